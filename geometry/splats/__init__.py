"""Gaussian splats: parameters, projection, rasterizer backends (gsplat on CUDA, our CPU kernel)."""

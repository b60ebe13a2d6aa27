// EWA projection of 3D Gaussians into pinhole cameras on the CPU, forward and backward, fused per Gaussian
// (what gsplat's "fully fused projection" does on the GPU).
//
// The pure-torch twin is `projection.project_gaussians` (with `Gaussians.covariances`); this file follows
// it step by step, and its docstring and constants define the numbers:
//   forward, per (camera c, Gaussian n): R from the normalized quaternion, M = R diag(exp(log_scales)),
//     Sigma = M M^T; mean and covariance into the camera (p = W mu + t, Sigma_c = W Sigma W^T); the
//     perspective Jacobian J at the mean with x/z, y/z clamped to the frustum plus a margin;
//     cov2d = J Sigma_c J^T + eps2d I; conic = cov2d^-1; means2d = K p / z; radii = ceil(3.33 sigma) of the
//     larger axis, 0 when the Gaussian is behind the near plane, degenerate or off screen.
//   backward: the chain rule back through the same steps to means, quaternions and log scales. As in
//     gsplat, a Gaussian with radius 0 in a camera gets no gradient from that camera.
// Written by hand rather than left to autograd: the twin's [C, N, 3, 3] batched matmuls and ~100 small
// ops (each with its backward) took more time per training step than rasterizing the pixels did.
//
// Parallel over Gaussians, each looping over the cameras: the gradient sums over cameras need no atomics
// and are deterministic. Built with -ffp-contract=off like the rasterizer.

// Only the ATen headers these kernels use, not <torch/extension.h>: its parse alone took 29 s of the
// build's ~35 s (the code itself compiles in seconds). See build.py.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

// The twin's constants (projection.py).
constexpr double kFrustumMargin = 0.3;
constexpr double kSigmaExtent = 3.33;

template <typename S>
struct Camera {
    S W[3][3];  // rotation of cam_from_world
    S t[3];
    S fx, fy, cx, cy;  // cx, cy at gsplat's pixel centres (+0.5)
    S lim_x_pos, lim_x_neg, lim_y_pos, lim_y_neg;
};

template <typename S>
Camera<S> camera_at(const S* viewmat, const S* K, int64_t width, int64_t height) {
    Camera<S> cam;
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) cam.W[i][j] = viewmat[4 * i + j];
        cam.t[i] = viewmat[4 * i + 3];
    }
    cam.fx = K[0];
    cam.fy = K[4];
    cam.cx = K[2] + S(0.5);
    cam.cy = K[5] + S(0.5);
    const S tan_x = S(0.5) * S(width) / cam.fx, tan_y = S(0.5) * S(height) / cam.fy;
    cam.lim_x_pos = (S(width) - cam.cx) / cam.fx + S(kFrustumMargin) * tan_x;
    cam.lim_x_neg = cam.cx / cam.fx + S(kFrustumMargin) * tan_x;
    cam.lim_y_pos = (S(height) - cam.cy) / cam.fy + S(kFrustumMargin) * tan_y;
    cam.lim_y_neg = cam.cy / cam.fy + S(kFrustumMargin) * tan_y;
    return cam;
}

// The C cameras of viewmats [C, 4, 4] and Ks [C, 3, 3].
template <typename S>
std::vector<Camera<S>> cameras_of(const at::Tensor& viewmats, const at::Tensor& Ks, int64_t width, int64_t height) {
    std::vector<Camera<S>> cams;
    for (int64_t c = 0; c < viewmats.size(0); ++c)
        cams.push_back(camera_at<S>(viewmats.data_ptr<S>() + 16 * c, Ks.data_ptr<S>() + 9 * c, width, height));
    return cams;
}

// World covariance of one Gaussian, and what its backward pass needs.
template <typename S>
struct Shape {
    S qn[4];     // normalized (w, x, y, z)
    S q_norm;    // |q|
    S R[3][3];   // world_from_local
    S s[3];      // standard deviations
    S M[3][3];   // R diag(s)
    S Sigma[3][3];
};

template <typename S>
Shape<S> shape_of(const S* quat, const S* log_scale) {
    Shape<S> g;
    g.q_norm = std::sqrt(quat[0] * quat[0] + quat[1] * quat[1] + quat[2] * quat[2] + quat[3] * quat[3]);
    for (int i = 0; i < 4; ++i) g.qn[i] = quat[i] / g.q_norm;
    const S w = g.qn[0], x = g.qn[1], y = g.qn[2], z = g.qn[3];
    g.R[0][0] = 1 - 2 * (y * y + z * z);
    g.R[0][1] = 2 * (x * y - w * z);
    g.R[0][2] = 2 * (x * z + w * y);
    g.R[1][0] = 2 * (x * y + w * z);
    g.R[1][1] = 1 - 2 * (x * x + z * z);
    g.R[1][2] = 2 * (y * z - w * x);
    g.R[2][0] = 2 * (x * z - w * y);
    g.R[2][1] = 2 * (y * z + w * x);
    g.R[2][2] = 1 - 2 * (x * x + y * y);
    for (int j = 0; j < 3; ++j) g.s[j] = std::exp(log_scale[j]);
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) g.M[i][j] = g.R[i][j] * g.s[j];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) g.Sigma[i][j] = g.M[i][0] * g.M[j][0] + g.M[i][1] * g.M[j][1] + g.M[i][2] * g.M[j][2];
    return g;
}

// One Gaussian seen by one camera.
template <typename S>
struct View {
    S p[3];          // camera-frame mean
    S Sigma_c[3][3];  // camera-frame covariance
    S tx, ty;        // clamped x, y for the Jacobian
    bool clamped_x, clamped_y;
    S J[2][3];
    S a, b, c, det;  // cov2d + eps2d: [[a, b], [b, c]]
    bool in_front;
};

template <typename S>
View<S> view_of(const Shape<S>& g, const S* mean, const Camera<S>& cam, S near, S eps2d) {
    View<S> v;
    for (int i = 0; i < 3; ++i)
        v.p[i] = cam.W[i][0] * mean[0] + cam.W[i][1] * mean[1] + cam.W[i][2] * mean[2] + cam.t[i];
    S WS[3][3];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            WS[i][j] = cam.W[i][0] * g.Sigma[0][j] + cam.W[i][1] * g.Sigma[1][j] + cam.W[i][2] * g.Sigma[2][j];
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            v.Sigma_c[i][j] = WS[i][0] * cam.W[j][0] + WS[i][1] * cam.W[j][1] + WS[i][2] * cam.W[j][2];
    const S z = v.p[2];
    v.in_front = z > near;
    const S zs = v.in_front ? z : S(1);
    const S ux = v.p[0] / zs, uy = v.p[1] / zs;
    const S cx = std::min(std::max(ux, -cam.lim_x_neg), cam.lim_x_pos);
    const S cy = std::min(std::max(uy, -cam.lim_y_neg), cam.lim_y_pos);
    v.clamped_x = cx != ux;
    v.clamped_y = cy != uy;
    v.tx = zs * cx;
    v.ty = zs * cy;
    v.J[0][0] = cam.fx / zs;
    v.J[0][1] = 0;
    v.J[0][2] = -cam.fx * v.tx / (zs * zs);
    v.J[1][0] = 0;
    v.J[1][1] = cam.fy / zs;
    v.J[1][2] = -cam.fy * v.ty / (zs * zs);
    S JS[2][3];
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j)
            JS[i][j] = v.J[i][0] * v.Sigma_c[0][j] + v.J[i][1] * v.Sigma_c[1][j] + v.J[i][2] * v.Sigma_c[2][j];
    v.a = JS[0][0] * v.J[0][0] + JS[0][1] * v.J[0][1] + JS[0][2] * v.J[0][2] + eps2d;
    v.b = JS[0][0] * v.J[1][0] + JS[0][1] * v.J[1][1] + JS[0][2] * v.J[1][2];
    v.c = JS[1][0] * v.J[1][0] + JS[1][1] * v.J[1][1] + JS[1][2] * v.J[1][2] + eps2d;
    v.det = v.a * v.c - v.b * v.b;
    return v;
}

template <typename S>
void forward_typed(const at::Tensor& means, const at::Tensor& quats, const at::Tensor& log_scales,
                   const at::Tensor& viewmats, const at::Tensor& Ks, int64_t width, int64_t height, double near,
                   double eps2d, at::Tensor& means2d, at::Tensor& conics, at::Tensor& depths, at::Tensor& radii) {
    const int64_t C = viewmats.size(0), N = means.size(0);
    const std::vector<Camera<S>> cams = cameras_of<S>(viewmats, Ks, width, height);
    const S* mp = means.data_ptr<S>();
    const S* qp = quats.data_ptr<S>();
    const S* lp = log_scales.data_ptr<S>();
    S* m2 = means2d.data_ptr<S>();
    S* co = conics.data_ptr<S>();
    S* dp = depths.data_ptr<S>();
    int32_t* rp = radii.data_ptr<int32_t>();
#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
    for (int64_t n = 0; n < N; ++n) {
        const Shape<S> g = shape_of<S>(qp + 4 * n, lp + 3 * n);
        for (int64_t c = 0; c < C; ++c) {
            const Camera<S>& cam = cams[c];
            const View<S> v = view_of<S>(g, mp + 3 * n, cam, S(near), S(eps2d));
            const int64_t i = c * N + n;
            const bool valid = v.in_front && v.det > 0;
            const S zs = v.in_front ? v.p[2] : S(1);
            const S det = valid ? v.det : S(1);
            co[3 * i] = v.c / det;
            co[3 * i + 1] = -v.b / det;
            co[3 * i + 2] = v.a / det;
            const S u = cam.fx * v.p[0] / zs + cam.cx, w = cam.fy * v.p[1] / zs + cam.cy;
            m2[2 * i] = u;
            m2[2 * i + 1] = w;
            dp[i] = v.p[2];
            const S radius_x = std::ceil(S(kSigmaExtent) * std::sqrt(v.a));
            const S radius_y = std::ceil(S(kSigmaExtent) * std::sqrt(v.c));
            const bool on_screen =
                u + radius_x > 0 && u - radius_x < S(width) && w + radius_y > 0 && w - radius_y < S(height);
            rp[i] = valid && on_screen ? int32_t(std::max(radius_x, radius_y)) : 0;
        }
    }
}

template <typename S>
void backward_typed(const at::Tensor& means, const at::Tensor& quats, const at::Tensor& log_scales,
                    const at::Tensor& viewmats, const at::Tensor& Ks, const at::Tensor& radii, int64_t width,
                    int64_t height, double near, double eps2d, const at::Tensor& v_means2d,
                    const at::Tensor& v_conics, const at::Tensor& v_depths, at::Tensor& v_means, at::Tensor& v_quats,
                    at::Tensor& v_log_scales) {
    const int64_t C = viewmats.size(0), N = means.size(0);
    const std::vector<Camera<S>> cams = cameras_of<S>(viewmats, Ks, width, height);
    const S* mp = means.data_ptr<S>();
    const S* qp = quats.data_ptr<S>();
    const S* lp = log_scales.data_ptr<S>();
    const int32_t* rp = radii.data_ptr<int32_t>();
    const S* vm2 = v_means2d.data_ptr<S>();
    const S* vco = v_conics.data_ptr<S>();
    const S* vdp = v_depths.data_ptr<S>();
    S* out_mean = v_means.data_ptr<S>();
    S* out_quat = v_quats.data_ptr<S>();
    S* out_scale = v_log_scales.data_ptr<S>();
#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
    for (int64_t n = 0; n < N; ++n) {
        const Shape<S> g = shape_of<S>(qp + 4 * n, lp + 3 * n);
        S v_mu[3] = {0, 0, 0};
        S v_Sigma[3][3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
        bool any = false;
        for (int64_t c = 0; c < C; ++c) {
            const int64_t i = c * N + n;
            if (rp[i] <= 0) continue;  // culled here: no gradient (gsplat's rule; the twin detaches it too)
            any = true;
            const Camera<S>& cam = cams[c];
            const View<S> v = view_of<S>(g, mp + 3 * n, cam, S(near), S(eps2d));
            const S x = v.p[0], y = v.p[1], z = v.p[2];
            // conic = (c, -b, a) / det.
            const S det2 = v.det * v.det;
            const S g0 = vco[3 * i], g1 = vco[3 * i + 1], g2 = vco[3 * i + 2];
            const S v_a = (-g0 * v.c * v.c + g1 * v.b * v.c - g2 * v.b * v.b) / det2;
            const S v_b = (2 * g0 * v.b * v.c - g1 * (v.det + 2 * v.b * v.b) + 2 * g2 * v.a * v.b) / det2;
            const S v_c = (-g0 * v.b * v.b + g1 * v.a * v.b - g2 * v.a * v.a) / det2;
            // cov2d = J Sigma_c J^T, its gradient G made symmetric (b is one entry, read once).
            const S G[2][2] = {{v_a, v_b / 2}, {v_b / 2, v_c}};
            S GJ[2][3];
            for (int r = 0; r < 2; ++r)
                for (int k = 0; k < 3; ++k) GJ[r][k] = G[r][0] * v.J[0][k] + G[r][1] * v.J[1][k];
            S v_Sigma_c[3][3];
            for (int k = 0; k < 3; ++k)
                for (int l = 0; l < 3; ++l) v_Sigma_c[k][l] = v.J[0][k] * GJ[0][l] + v.J[1][k] * GJ[1][l];
            S v_J[2][3];
            for (int r = 0; r < 2; ++r)
                for (int k = 0; k < 3; ++k)
                    v_J[r][k] = 2 * (GJ[r][0] * v.Sigma_c[0][k] + GJ[r][1] * v.Sigma_c[1][k] + GJ[r][2] * v.Sigma_c[2][k]);
            // means2d = (fx x / z + cx, fy y / z + cy), depth = z.
            const S vu = vm2[2 * i], vv = vm2[2 * i + 1];
            S v_p[3];
            v_p[0] = vu * cam.fx / z;
            v_p[1] = vv * cam.fy / z;
            v_p[2] = -vu * cam.fx * x / (z * z) - vv * cam.fy * y / (z * z) + vdp[i];
            // J = [[fx / z, 0, -fx tx / z^2], [0, fy / z, -fy ty / z^2]], tx = z clamp(x / z).
            const S z2 = z * z, z3 = z2 * z;
            v_p[2] += -v_J[0][0] * cam.fx / z2 - v_J[1][1] * cam.fy / z2 + 2 * v_J[0][2] * cam.fx * v.tx / z3 +
                      2 * v_J[1][2] * cam.fy * v.ty / z3;
            const S v_tx = -v_J[0][2] * cam.fx / z2, v_ty = -v_J[1][2] * cam.fy / z2;
            if (v.clamped_x) v_p[2] += v_tx * (v.tx / z);
            else v_p[0] += v_tx;
            if (v.clamped_y) v_p[2] += v_ty * (v.ty / z);
            else v_p[1] += v_ty;
            // p = W mu + t, Sigma_c = W Sigma W^T.
            for (int k = 0; k < 3; ++k) v_mu[k] += cam.W[0][k] * v_p[0] + cam.W[1][k] * v_p[1] + cam.W[2][k] * v_p[2];
            S VW[3][3];
            for (int k = 0; k < 3; ++k)
                for (int l = 0; l < 3; ++l)
                    VW[k][l] = v_Sigma_c[k][0] * cam.W[0][l] + v_Sigma_c[k][1] * cam.W[1][l] + v_Sigma_c[k][2] * cam.W[2][l];
            for (int k = 0; k < 3; ++k)
                for (int l = 0; l < 3; ++l)
                    v_Sigma[k][l] += cam.W[0][k] * VW[0][l] + cam.W[1][k] * VW[1][l] + cam.W[2][k] * VW[2][l];
        }
        S* om = out_mean + 3 * n;
        S* oq = out_quat + 4 * n;
        S* os = out_scale + 3 * n;
        for (int k = 0; k < 3; ++k) om[k] = v_mu[k];
        if (!any) {
            for (int k = 0; k < 4; ++k) oq[k] = 0;
            for (int k = 0; k < 3; ++k) os[k] = 0;
            continue;
        }
        // Sigma = M M^T: v_M = (V + V^T) M; M = R diag(s).
        S v_R[3][3];
        S v_s[3] = {0, 0, 0};
        for (int r = 0; r < 3; ++r)
            for (int j = 0; j < 3; ++j) {
                S v_M = 0;
                for (int k = 0; k < 3; ++k) v_M += (v_Sigma[r][k] + v_Sigma[k][r]) * g.M[k][j];
                v_R[r][j] = v_M * g.s[j];
                v_s[j] += v_M * g.R[r][j];
            }
        for (int j = 0; j < 3; ++j) os[j] = v_s[j] * g.s[j];
        // R of the normalized quaternion (w, x, y, z), then the normalization.
        const S w = g.qn[0], x = g.qn[1], y = g.qn[2], zq = g.qn[3];
        S v_qn[4];
        v_qn[0] = 2 * (-zq * v_R[0][1] + y * v_R[0][2] + zq * v_R[1][0] - x * v_R[1][2] - y * v_R[2][0] + x * v_R[2][1]);
        v_qn[1] = 2 * (y * v_R[0][1] + zq * v_R[0][2] + y * v_R[1][0] - 2 * x * v_R[1][1] - w * v_R[1][2] +
                       zq * v_R[2][0] + w * v_R[2][1] - 2 * x * v_R[2][2]);
        v_qn[2] = 2 * (-2 * y * v_R[0][0] + x * v_R[0][1] + w * v_R[0][2] + x * v_R[1][0] + zq * v_R[1][2] -
                       w * v_R[2][0] + zq * v_R[2][1] - 2 * y * v_R[2][2]);
        v_qn[3] = 2 * (-2 * zq * v_R[0][0] - w * v_R[0][1] + x * v_R[0][2] + w * v_R[1][0] - 2 * zq * v_R[1][1] +
                       y * v_R[1][2] + x * v_R[2][0] + y * v_R[2][1]);
        const S dot = g.qn[0] * v_qn[0] + g.qn[1] * v_qn[1] + g.qn[2] * v_qn[2] + g.qn[3] * v_qn[3];
        for (int k = 0; k < 4; ++k) oq[k] = (v_qn[k] - g.qn[k] * dot) / g.q_norm;
    }
}

void check_gaussians(const at::Tensor& means, const at::Tensor& quats, const at::Tensor& log_scales,
                     const at::Tensor& viewmats, const at::Tensor& Ks) {
    const int64_t N = means.size(0), C = viewmats.size(0);
    TORCH_CHECK(means.dim() == 2 && means.size(1) == 3, "means must be [N, 3]");
    TORCH_CHECK(quats.dim() == 2 && quats.size(0) == N && quats.size(1) == 4, "quats must be [N, 4]");
    TORCH_CHECK(log_scales.dim() == 2 && log_scales.size(0) == N && log_scales.size(1) == 3,
                "log_scales must be [N, 3]");
    TORCH_CHECK(viewmats.dim() == 3 && viewmats.size(1) == 4 && viewmats.size(2) == 4, "viewmats must be [C, 4, 4]");
    TORCH_CHECK(Ks.dim() == 3 && Ks.size(0) == C && Ks.size(1) == 3 && Ks.size(2) == 3, "Ks must be [C, 3, 3]");
    for (const at::Tensor* t : {&means, &quats, &log_scales, &viewmats, &Ks}) {
        TORCH_CHECK(t->device().is_cpu() && t->is_contiguous(), "inputs must be contiguous CPU tensors");
        TORCH_CHECK(t->scalar_type() == means.scalar_type(), "all inputs must share one float dtype");
    }
    TORCH_CHECK(means.scalar_type() == at::kFloat || means.scalar_type() == at::kDouble,
                "the CPU projection supports float32 and float64");
}

}  // namespace

// Forward. Shapes: means [N, 3], quats [N, 4] (w, x, y, z, any norm), log_scales [N, 3], viewmats [C, 4, 4]
// (cam_from_world), Ks [C, 3, 3] (OpenCV pixel centres), one float dtype.
// Returns means2d [C, N, 2], conics [C, N, 3], depths [C, N], radii [C, N] int32.
std::vector<at::Tensor> project_forward(const at::Tensor& means, const at::Tensor& quats, const at::Tensor& log_scales,
                                        const at::Tensor& viewmats, const at::Tensor& Ks, int64_t width,
                                        int64_t height, double near, double eps2d) {
    check_gaussians(means, quats, log_scales, viewmats, Ks);
    TORCH_CHECK(width > 0 && height > 0, "image size must be positive, got ", width, "x", height);
    const int64_t N = means.size(0), C = viewmats.size(0);
    const auto opts = means.options();
    at::Tensor means2d = at::empty({C, N, 2}, opts), conics = at::empty({C, N, 3}, opts);
    at::Tensor depths = at::empty({C, N}, opts), radii = at::empty({C, N}, opts.dtype(at::kInt));
    if (means.scalar_type() == at::kFloat)
        forward_typed<float>(means, quats, log_scales, viewmats, Ks, width, height, near, eps2d, means2d, conics,
                             depths, radii);
    else
        forward_typed<double>(means, quats, log_scales, viewmats, Ks, width, height, near, eps2d, means2d, conics,
                              depths, radii);
    return {means2d, conics, depths, radii};
}

// Backward: the forward's inputs, its radii and the gradients of means2d [C, N, 2], conics [C, N, 3] and
// depths [C, N]. Returns v_means [N, 3], v_quats [N, 4], v_log_scales [N, 3].
std::vector<at::Tensor> project_backward(const at::Tensor& means, const at::Tensor& quats,
                                         const at::Tensor& log_scales, const at::Tensor& viewmats,
                                         const at::Tensor& Ks, const at::Tensor& radii, int64_t width,
                                         int64_t height, double near, double eps2d, const at::Tensor& v_means2d,
                                         const at::Tensor& v_conics, const at::Tensor& v_depths) {
    check_gaussians(means, quats, log_scales, viewmats, Ks);
    const int64_t N = means.size(0), C = viewmats.size(0);
    const std::vector<int64_t> per_camera = {C, N};
    TORCH_CHECK(radii.sizes().vec() == per_camera && radii.scalar_type() == at::kInt && radii.is_contiguous(),
                "radii must be [C, N] contiguous int32");
    for (const at::Tensor* t : {&v_means2d, &v_conics, &v_depths})
        TORCH_CHECK(t->is_contiguous() && t->scalar_type() == means.scalar_type() && t->size(0) == C &&
                        t->size(1) == N,
                    "gradients must be contiguous [C, N, ...] of the inputs' dtype");
    at::Tensor v_means = at::empty({N, 3}, means.options()), v_quats = at::empty({N, 4}, means.options());
    at::Tensor v_log_scales = at::empty({N, 3}, means.options());
    if (means.scalar_type() == at::kFloat)
        backward_typed<float>(means, quats, log_scales, viewmats, Ks, radii, width, height, near, eps2d, v_means2d,
                              v_conics, v_depths, v_means, v_quats, v_log_scales);
    else
        backward_typed<double>(means, quats, log_scales, viewmats, Ks, radii, width, height, near, eps2d, v_means2d,
                               v_conics, v_depths, v_means, v_quats, v_log_scales);
    return {v_means, v_quats, v_log_scales};
}

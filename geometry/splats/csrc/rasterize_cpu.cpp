// CPU rasterizer of 2D Gaussians with gsplat's `rasterize_to_pixels` semantics (forward and backward).
//
// The Python side (`reshoot/geometry/splats/rasterize_cpu.py`) wraps the two entry points in a
// torch.autograd.Function; `rasterize_reference.py` is the pure-torch twin that defines the numbers.
//
// Pipeline, per camera:
//   1. Binning: every Gaussian with radius > 0 covers a rectangle of tiles (gsplat's rule:
//      floor((mean - r) / tile) .. ceil((mean + r) / tile), clamped, max exclusive). Gaussians are
//      stably sorted by depth once, then dealt into per-tile lists in that order (a counting sort), so
//      every tile list is front to back with ties broken by index.
//   2. Forward: OpenMP over (camera, tile). Within a tile the loop runs over the tile's Gaussians and,
//      inside, over the tile's pixels in SIMD vectors with per-pixel masks, so that early termination is
//      per pixel (as on the GPU) while the pixel loop stays branch-free. Per Gaussian only the rows and
//      columns it can reach with alpha >= 1/255 are visited (an exact bound, widened for rounding). A
//      tile stops when all its pixels are done. Each pixel keeps its final transmittance and the list
//      position of the last Gaussian it used.
//   3. Backward: the same tiles walk their lists back to front from the largest "last" position,
//      recover the transmittance by division (T_before = T_after / (1 - alpha), as gsplat does) and sum
//      each Gaussian's gradient over the tile's pixels in registers. The per-tile sums go to one row per
//      (tile, Gaussian) intersection, in Gaussian-major order, and a final pass adds each Gaussian's rows.
//      No [pixels x Gaussians] array exists, there are no atomics, and the sums are deterministic.
//
// Vectorization is explicit (GCC/Clang vector types), instantiated for AVX2 (8 floats) and for the
// baseline (SSE2 or NEON, 4 floats) and chosen at run time from the CPU, so the build stays portable (no
// -march=native). (An AVX-512 instantiation measured slower: GCC 12 lowers part of its 16-lane mask
// logic lane by lane.) float64 (for gradcheck) uses the same templates.

// Only the ATen headers these kernels use and <torch/library.h> for the registration, not
// <torch/extension.h> (pybind11 and all of libtorch's C++ API): its parse alone took 29 s of the build's
// ~35 s. See build.py.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace {

// gsplat's constants (Common.h): alphas below 1/255 are skipped, alphas are capped at 0.999 and a pixel
// stops before the Gaussian that would bring its transmittance to 1e-4 or below.
constexpr double kAlphaMin = 1.0 / 255.0;
constexpr double kAlphaMax = 0.999;
constexpr double kTransmittanceMin = 1e-4;

// exp(-sigma) is set to exactly 0 beyond this sigma: it is below 1e-17 there, far under the 1/255 alpha
// threshold for any opacity <= 1, so no result changes, and the products that follow stay out of the
// subnormal range, where x86 arithmetic is many times slower.
constexpr double kSigmaMax = 40.0;

#define RESHOOT_INLINE inline __attribute__((always_inline))

// ---------------------------------------------------------------------------------------------------
// SIMD vocabulary: Vec<S, L> holds L values, Mask<S, L> the matching 0 / -1 lanes of a comparison (and
// per-lane integers). The code is written once on these types; each instruction set instantiates it
// with its native width, so every operation is one machine instruction.

template <typename S, int L>
struct Lanes {
    using Int = std::conditional_t<sizeof(S) == 4, int32_t, int64_t>;
    typedef S V __attribute__((vector_size(L * sizeof(S))));
    typedef Int I __attribute__((vector_size(L * sizeof(S))));
};
template <typename S, int L>
using Vec = typename Lanes<S, L>::V;
template <typename S, int L>
using Mask = typename Lanes<S, L>::I;

template <int L, typename T>
RESHOOT_INLINE auto lane_sum(const T& v) {
    auto sum = v[0];
    for (int l = 1; l < L; ++l) sum += v[l];  // fixed order: deterministic
    return sum;
}

// Per-tile scratch arrays of vectors, 64-byte aligned. Not std::vector: a vector type's alignment
// differs between the instruction-set instantiations, and the wide ones use aligned loads.
template <typename T>
class Scratch {
  public:
    Scratch(int64_t n, const T& fill)
        : data_(static_cast<T*>(std::aligned_alloc(64, ((n * int64_t(sizeof(T)) + 63) / 64 + 1) * 64))) {
        TORCH_CHECK(data_ != nullptr, "out of memory in the CPU rasterizer");
        for (int64_t i = 0; i < n; ++i) data_[i] = fill;
    }
    ~Scratch() { std::free(data_); }
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;
    T& operator[](int64_t i) { return data_[i]; }
    const T& operator[](int64_t i) const { return data_[i]; }

  private:
    T* data_;
};

// exp(-s) for 0 <= s <= kSigmaMax. float: Cephes' expf polynomial, with the range reduction done by the
// 1.5 * 2^23 rounding trick and the exponent bits built by hand, so it is plain vector arithmetic; error
// about 1 ulp against the twin's torch.exp. double (gradcheck): the library exp, lane by lane.
template <typename S, int L>
RESHOOT_INLINE Vec<S, L> exp_neg(Vec<S, L> s) {
    if constexpr (std::is_same_v<S, float>) {
        using V = Vec<float, L>;
        using I = Mask<float, L>;
        const V x = -s;  // in [-40, 0]: 2^n below is a normal float
        const V shifted = x * 1.44269504088896341f + 12582912.0f;  // round(x / ln 2) lands in the low bits
        const V n = shifted - 12582912.0f;
        const I n_int = reinterpret_cast<const I&>(shifted) - 0x4B400000;
        const V r = (x - n * 0.693359375f) - n * (-2.12194440e-4f);  // x - n ln 2, in two parts
        V p = r * 1.9875691500e-4f + 1.3981999507e-3f;
        p = p * r + 8.3334519073e-3f;
        p = p * r + 4.1665795894e-2f;
        p = p * r + 1.6666665459e-1f;
        p = p * r + 5.0000001201e-1f;
        const V y = p * r * r + r + 1.0f;
        const I bits = (n_int + 127) << 23;
        return y * reinterpret_cast<const V&>(bits);
    } else {
        Vec<S, L> out;
        for (int l = 0; l < L; ++l) out[l] = std::exp(-s[l]);
        return out;
    }
}

// The Gaussian's falloff exp(-sigma), 0 beyond kSigmaMax (callers skip sigma < 0 anyway).
template <typename S, int L>
RESHOOT_INLINE Vec<S, L> falloff(Vec<S, L> sigma) {
    const Vec<S, L> zero = {};
    const Vec<S, L> s = sigma > S(0) ? (sigma < S(kSigmaMax) ? sigma : zero + S(kSigmaMax)) : zero;
    return sigma < S(kSigmaMax) ? exp_neg<S, L>(s) : zero;
}

// sigma = 0.5 (a dx^2 + c dy^2) + b dx dy with (dx, dy) = mean - pixel, in the twin's operation order.
template <typename S, int L>
RESHOOT_INLINE Vec<S, L> gaussian_sigma(S a, S b, S c, Vec<S, L> dx, Vec<S, L> dy) {
    return S(0.5) * (a * dx * dx + c * dy * dy) + b * dx * dy;
}

// ---------------------------------------------------------------------------------------------------
// Binning.

// Tile rectangle [x0, x1) x [y0, y1) touched by a Gaussian; empty for radius <= 0 or a non-finite mean.
struct TileRect {
    int32_t x0 = 0, x1 = 0, y0 = 0, y1 = 0;
    int64_t count() const { return int64_t(x1 - x0) * int64_t(y1 - y0); }
};

template <typename S>
TileRect tile_rect(S mx, S my, int32_t radius, int32_t tiles_x, int32_t tiles_y, int32_t tile_size) {
    TileRect rect;
    if (radius <= 0 || !std::isfinite(mx) || !std::isfinite(my)) return rect;
    const S r = S(radius), ts = S(tile_size);
    auto clamp = [](S v, int32_t hi) { return static_cast<int32_t>(std::min(std::max(v, S(0)), S(hi))); };
    rect.x0 = clamp(std::floor((mx - r) / ts), tiles_x);
    rect.x1 = clamp(std::ceil((mx + r) / ts), tiles_x);
    rect.y0 = clamp(std::floor((my - r) / ts), tiles_y);
    rect.y1 = clamp(std::ceil((my + r) / ts), tiles_y);
    if (rect.x1 <= rect.x0 || rect.y1 <= rect.y0) rect = TileRect{};
    return rect;
}

// Image and tile geometry shared by all passes.
struct Grid {
    int64_t cameras, gaussians, width, height, tile_size, tiles_x, tiles_y;
    int64_t tiles() const { return tiles_x * tiles_y; }
};

// Per-tile Gaussian lists of all cameras (see the header comment).
struct Bins {
    at::Tensor tile_offsets;   // [C, tiles + 1] int64: tile t of camera c owns entries [o[c,t], o[c,t+1])
    at::Tensor gauss_ids;      // [n_isects] int32: Gaussian index within its camera, front to back per tile
    at::Tensor isect_slots;    // [n_isects] int64: the entry's row in Gaussian-major order
    at::Tensor gauss_offsets;  // [C, N + 1] int64: Gaussian g of camera c owns rows [o[c,g], o[c,g+1])
};

// Depth order with NaN last (as torch.sort), ties by index (stable_sort keeps index order).
template <typename S>
bool depth_less(S a, S b) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
    return a < b;
}

template <typename S>
Bins bin_gaussians(const at::Tensor& means2d, const at::Tensor& depths, const at::Tensor& radii, const Grid& grid) {
    const int64_t C = grid.cameras, N = grid.gaussians, n_tiles = grid.tiles();
    const S* means = means2d.data_ptr<S>();
    const S* depth = depths.data_ptr<S>();
    const int32_t* radius = radii.data_ptr<int32_t>();

    std::vector<TileRect> rects(C * N);
    at::Tensor gauss_offsets = at::empty({C, N + 1}, at::kLong);
    int64_t* g_off = gauss_offsets.data_ptr<int64_t>();

#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
    for (int64_t i = 0; i < C * N; ++i) {
        rects[i] = tile_rect<S>(means[2 * i], means[2 * i + 1], radius[i], int32_t(grid.tiles_x),
                                int32_t(grid.tiles_y), int32_t(grid.tile_size));
    }
    // Gaussian-major rows: camera after camera, Gaussian after Gaussian.
    int64_t total = 0;
    for (int64_t c = 0; c < C; ++c) {
        for (int64_t g = 0; g < N; ++g) {
            g_off[c * (N + 1) + g] = total;
            total += rects[c * N + g].count();
        }
        g_off[c * (N + 1) + N] = total;
    }

    at::Tensor tile_offsets = at::empty({C, n_tiles + 1}, at::kLong);
    at::Tensor gauss_ids = at::empty({total}, at::kInt);
    at::Tensor isect_slots = at::empty({total}, at::kLong);
    int64_t* t_off = tile_offsets.data_ptr<int64_t>();
    int32_t* ids = gauss_ids.data_ptr<int32_t>();
    int64_t* slots = isect_slots.data_ptr<int64_t>();

#pragma omp parallel for schedule(dynamic, 1) num_threads(at::get_num_threads())
    for (int64_t c = 0; c < C; ++c) {
        const TileRect* rc = rects.data() + c * N;
        // Tile-major entries of this camera start where its Gaussian-major rows start: same count.
        int64_t* offsets = t_off + c * (n_tiles + 1);
        std::vector<int64_t> cursor(n_tiles, 0);
        for (int64_t g = 0; g < N; ++g)
            for (int32_t ty = rc[g].y0; ty < rc[g].y1; ++ty)
                for (int32_t tx = rc[g].x0; tx < rc[g].x1; ++tx) ++cursor[ty * grid.tiles_x + tx];
        int64_t running = g_off[c * (N + 1)];
        for (int64_t t = 0; t < n_tiles; ++t) {
            offsets[t] = running;
            running += cursor[t];
            cursor[t] = offsets[t];
        }
        offsets[n_tiles] = running;

        std::vector<int32_t> order;
        order.reserve(N);
        for (int64_t g = 0; g < N; ++g)
            if (rc[g].count() > 0) order.push_back(int32_t(g));
        const S* dc = depth + c * N;
        std::stable_sort(order.begin(), order.end(), [dc](int32_t a, int32_t b) { return depth_less(dc[a], dc[b]); });

        // Deal the Gaussians front to back: each tile's list comes out sorted.
        for (const int32_t g : order) {
            int64_t slot = g_off[c * (N + 1) + g];
            for (int32_t ty = rc[g].y0; ty < rc[g].y1; ++ty)
                for (int32_t tx = rc[g].x0; tx < rc[g].x1; ++tx) {
                    const int64_t at = cursor[ty * grid.tiles_x + tx]++;
                    ids[at] = g;
                    slots[at] = slot++;
                }
        }
    }
    return {tile_offsets, gauss_ids, isect_slots, gauss_offsets};
}

// The pixels of one tile, clipped to the image: P = tile_w * tile_h pixels in row-major order.
struct TilePixels {
    int64_t x0, y0, tile_w, tile_h;
    int64_t count() const { return tile_w * tile_h; }
    int64_t pixel_index(int64_t p, int64_t width) const { return (y0 + p / tile_w) * width + x0 + p % tile_w; }
};

RESHOOT_INLINE TilePixels tile_pixels(const Grid& grid, int64_t tile) {
    const int64_t x0 = (tile % grid.tiles_x) * grid.tile_size, y0 = (tile / grid.tiles_x) * grid.tile_size;
    return {x0, y0, std::min(grid.tile_size, grid.width - x0), std::min(grid.tile_size, grid.height - y0)};
}

// Inputs of one camera (pointers into [C, N, ...] arrays already offset to the camera).
template <typename S>
struct CameraInputs {
    const S* means;       // [N, 2]
    const S* conics;      // [N, 3]
    const S* colors;      // [N, D]
    const S* opacities;   // [N]
    const S* background;  // [D] or nullptr
    const int32_t* ids;   // this tile's list
    int64_t n_list;       // its length
    int64_t channels;
};

template <typename S>
struct ForwardOutputs {
    S* render;         // [H, W, D] of the camera
    S* alpha;          // [H, W]
    S* transmittance;  // [H, W] final T (kept for the backward pass: more precise than 1 - alpha)
    int32_t* last;     // [H, W] list position of the last Gaussian used, -1 if none
};

template <typename S>
struct BackwardInputs {
    const S* transmittance;  // [H, W] final T of the camera
    const int32_t* last;     // [H, W]
    const S* v_render;       // [H, W, D]
    const S* v_alpha;        // [H, W]
    const int64_t* slots;    // this tile's list: Gaussian-major row of each entry
    S* rows;                 // [n_isects, 6 + D] per-entry gradient sums (output)
};

// Row layout of the per-intersection gradient buffer.
constexpr int64_t kRowMeanX = 0, kRowMeanY = 1, kRowConicA = 2, kRowConicB = 3, kRowConicC = 4, kRowOpacity = 5,
                  kRowColor = 6;

// The part of a tile a Gaussian can reach with alpha >= 1/255: tile-local rows [row0, row1) and columns
// [col0, col1). alpha >= 1/255 needs sigma <= s0 = ln(255 opacity); for a positive definite conic the
// smallest sigma at vertical distance dy is 0.5 dy^2 det / a (and at horizontal distance dx, 0.5 dx^2
// det / c), so farther rows and columns cannot take part. The bound is widened (2 % and half a pixel) so
// that rounding never drops a pixel the twin keeps; without a usable bound (not positive definite,
// NaN, or so ill-conditioned that float rounding of sigma could exceed the margin) the whole tile is
// visited. Forward and backward use the same bound.
struct Reach {
    int64_t row0, row1, col0, col1;
};

template <typename S>
RESHOOT_INLINE Reach reach(S mx, S my, S ca, S cb, S cc, S op, const TilePixels& tp) {
    const Reach whole{0, tp.tile_h, 0, tp.tile_w};
    const S det = ca * cc - cb * cb;
    if (!(ca > S(0) && cc > S(0) && det > S(0) && op > S(0)) || ca * cc > S(1e4) * det) return whole;
    const S s0 = std::max(std::log(op * S(255)), S(0));
    const S half_h = std::sqrt(S(2) * s0 * ca / det) * S(1.02) + S(0.5);
    const S half_w = std::sqrt(S(2) * s0 * cc / det) * S(1.02) + S(0.5);
    if (!std::isfinite(half_h) || !std::isfinite(half_w) || !std::isfinite(mx) || !std::isfinite(my)) return whole;
    // Row r has its centre at y0 + r + 0.5: keep |my - centre| <= half_h (likewise for columns).
    auto range = [](S centre, S half, int64_t origin, int64_t size, int64_t& lo, int64_t& hi) {
        const S first = std::ceil(centre - half - S(0.5) - S(origin));
        const S end = std::floor(centre + half - S(0.5) - S(origin)) + S(1);
        lo = int64_t(std::min(std::max(first, S(0)), S(size)));
        hi = std::max(lo, int64_t(std::min(std::max(end, S(0)), S(size))));
    };
    Reach r;
    range(my, half_h, tp.y0, tp.tile_h, r.row0, r.row1);
    range(mx, half_w, tp.x0, tp.tile_w, r.col0, r.col1);
    return r;
}

// A tile's pixels in vector layout: each tile row is padded to whole vectors of L lanes (padding lanes
// are inactive), so pixel (row, col) is lane col % L of vector row * per_row + col / L.
template <int L>
struct Layout {
    int64_t per_row, vectors;
    explicit Layout(const TilePixels& tp) : per_row((tp.tile_w + L - 1) / L), vectors(per_row * tp.tile_h) {}
    int64_t vector_of(int64_t row, int64_t col) const { return row * per_row + col / L; }
    // Vectors of one row that hold the columns [col0, col1).
    int64_t first(int64_t row, const Reach& r) const { return row * per_row + r.col0 / L; }
    int64_t end(int64_t row, const Reach& r) const { return row * per_row + (r.col1 + L - 1) / L; }
};

template <typename S, int L>
RESHOOT_INLINE void pixel_centres(const TilePixels& tp, const Layout<L>& layout, Scratch<Vec<S, L>>& px,
                                  Scratch<Vec<S, L>>& py) {
    for (int64_t row = 0; row < tp.tile_h; ++row)
        for (int64_t col = 0; col < tp.tile_w; ++col) {
            px[layout.vector_of(row, col)][col % L] = S(tp.x0 + col) + S(0.5);
            py[layout.vector_of(row, col)][col % L] = S(tp.y0 + row) + S(0.5);
        }
}

// Forward of one tile: front to back over its list; per Gaussian, one vector pass over the pixels it can
// reach, with per-pixel masks for the skip and stop rules. Scratch is per call (negligible next to the loops).
template <typename S, int L>
RESHOOT_INLINE void forward_tile_impl(const CameraInputs<S>& in, const TilePixels& tp, int64_t width,
                                      const ForwardOutputs<S>& out) {
    using V = Vec<S, L>;
    using I = Mask<S, L>;
    const Layout<L> layout(tp);
    const int64_t D = in.channels, nv = layout.vectors;
    const V zero = {}, one = zero + S(1);
    const I none = {};
    Scratch<V> px(nv, zero), py(nv, zero), T(nv, one), w(nv, zero), acc(nv * D, zero);
    Scratch<I> active(nv, none), last(nv, none - 1);
    pixel_centres<S, L>(tp, layout, px, py);
    for (int64_t row = 0; row < tp.tile_h; ++row)
        for (int64_t col = 0; col < tp.tile_w; ++col) active[layout.vector_of(row, col)][col % L] = 1;

    // Whether any pixel is still going, checked every few Gaussians (a horizontal test per Gaussian
    // would cost as much as a vector of pixels).
    constexpr int64_t kCheckEvery = 8;
    auto any_active = [&]() {
        I any = none;
        for (int64_t v = 0; v < nv; ++v) any |= active[v];
        return lane_sum<L>(any) != 0;
    };
    for (int64_t k = 0; k < in.n_list; ++k) {
        if (k % kCheckEvery == 0 && !any_active()) break;
        const int64_t g = in.ids[k];
        const S mx = in.means[2 * g], my = in.means[2 * g + 1];
        const S ca = in.conics[3 * g], cb = in.conics[3 * g + 1], cc = in.conics[3 * g + 2];
        const S op = in.opacities[g];
        const I kk = none + typename Lanes<S, L>::Int(k);
        const Reach r = reach(mx, my, ca, cb, cc, op, tp);
        for (int64_t row = r.row0; row < r.row1; ++row) {
            for (int64_t v = layout.first(row, r); v < layout.end(row, r); ++v) {
                const V dx = mx - px[v], dy = my - py[v];
                const V sigma = gaussian_sigma<S, L>(ca, cb, cc, dx, dy);
                const V raw = op * falloff<S, L>(sigma);
                const V alpha = raw < S(kAlphaMax) ? raw : zero + S(kAlphaMax);
                const V t = T[v];
                const V next_t = t * (S(1) - alpha);
                const I hit = (active[v] != 0) & (sigma >= S(0)) & (alpha >= S(kAlphaMin));
                const I stop = hit & (next_t <= S(kTransmittanceMin));  // exclusive: this one is not added
                const I use = hit & ~stop;
                w[v] = use ? alpha * t : zero;
                T[v] = use ? next_t : t;
                last[v] = use ? kk : last[v];
                active[v] = stop ? none : active[v];
            }
        }
        for (int64_t ch = 0; ch < D; ++ch) {
            const S col = in.colors[g * D + ch];
            for (int64_t row = r.row0; row < r.row1; ++row)
                for (int64_t v = layout.first(row, r); v < layout.end(row, r); ++v) acc[ch * nv + v] += w[v] * col;
        }
    }

    for (int64_t row = 0; row < tp.tile_h; ++row)
        for (int64_t col = 0; col < tp.tile_w; ++col) {
            const int64_t pix = (tp.y0 + row) * width + tp.x0 + col, v = layout.vector_of(row, col), l = col % L;
            const S t = T[v][l];
            for (int64_t ch = 0; ch < D; ++ch) {
                const S bg = in.background != nullptr ? t * in.background[ch] : S(0);
                out.render[pix * D + ch] = acc[ch * nv + v][l] + bg;
            }
            out.alpha[pix] = S(1) - t;
            out.transmittance[pix] = t;
            out.last[pix] = int32_t(last[v][l]);
        }
}

// Backward of one tile: back to front over its list, sums over the tile's pixels in vector registers.
//
// d(render)/d(alpha_k) needs the colour composited behind Gaussian k, dotted with the pixel's output
// gradient. Only that dot product matters, so each pixel keeps it as one running scalar (`behind`)
// instead of a D-channel buffer, and the hot loop has no channel loop.
template <typename S, int L>
RESHOOT_INLINE void backward_tile_impl(const CameraInputs<S>& in, const TilePixels& tp, int64_t width,
                                       const BackwardInputs<S>& bw) {
    using V = Vec<S, L>;
    using I = Mask<S, L>;
    const Layout<L> layout(tp);
    const int64_t D = in.channels, R = kRowColor + D, nv = layout.vectors;
    const V zero = {};
    const I none = {};
    // Padding lanes: T = 1, no gradient, last = -1 (never valid).
    Scratch<V> px(nv, zero), py(nv, zero), T(nv, zero + S(1)), T_final(nv, zero), va(nv, zero), bg_dot(nv, zero),
        fac(nv, zero), col_dot(nv, zero), behind(nv, zero), vr(nv * D, zero);
    Scratch<I> last(nv, none - 1);
    pixel_centres<S, L>(tp, layout, px, py);
    int64_t max_last = -1;
    for (int64_t row = 0; row < tp.tile_h; ++row)
        for (int64_t col = 0; col < tp.tile_w; ++col) {
            const int64_t pix = (tp.y0 + row) * width + tp.x0 + col, v = layout.vector_of(row, col), l = col % L;
            T[v][l] = T_final[v][l] = bw.transmittance[pix];
            last[v][l] = bw.last[pix];
            max_last = std::max<int64_t>(max_last, bw.last[pix]);
            va[v][l] = bw.v_alpha[pix];
            for (int64_t ch = 0; ch < D; ++ch) {
                vr[ch * nv + v][l] = bw.v_render[pix * D + ch];
                if (in.background != nullptr) bg_dot[v][l] += in.background[ch] * bw.v_render[pix * D + ch];
            }
        }
    // Entries no pixel reached get zero rows (the buffer is uninitialized).
    for (int64_t k = max_last + 1; k < in.n_list; ++k) std::fill_n(bw.rows + bw.slots[k] * R, R, S(0));

    for (int64_t k = max_last; k >= 0; --k) {
        const int64_t g = in.ids[k];
        const S mx = in.means[2 * g], my = in.means[2 * g + 1];
        const S ca = in.conics[3 * g], cb = in.conics[3 * g + 1], cc = in.conics[3 * g + 2];
        const S op = in.opacities[g];
        const S* col = in.colors + g * D;
        const I kk = none + typename Lanes<S, L>::Int(k);
        const Reach r = reach(mx, my, ca, cb, cc, op, tp);  // the pixels the forward pass visited
        // This Gaussian's colour dotted with each pixel's output gradient.
        for (int64_t row = r.row0; row < r.row1; ++row)
            for (int64_t v = layout.first(row, r); v < layout.end(row, r); ++v) {
                V dot = zero;
                for (int64_t ch = 0; ch < D; ++ch) dot += col[ch] * vr[ch * nv + v];
                col_dot[v] = dot;
            }
        V v_mx = zero, v_my = zero, v_a = zero, v_b = zero, v_c = zero, v_op = zero;
        I any = none;
        for (int64_t row = r.row0; row < r.row1; ++row) {
            for (int64_t v = layout.first(row, r); v < layout.end(row, r); ++v) {
                const V dx = mx - px[v], dy = my - py[v];
                const V sigma = gaussian_sigma<S, L>(ca, cb, cc, dx, dy);
                const V vis = falloff<S, L>(sigma);
                const V raw = op * vis;
                const V alpha = raw < S(kAlphaMax) ? raw : zero + S(kAlphaMax);
                const I valid = (kk <= last[v]) & (sigma >= S(0)) & (alpha >= S(kAlphaMin));
                const V ra = S(1) / (S(1) - alpha);
                const V t_after = T[v];
                const V t = valid ? t_after * ra : t_after;  // transmittance in front of this Gaussian
                T[v] = t;
                const V f = valid ? alpha * t : zero;
                fac[v] = f;
                // d(out)/d(alpha): own colour minus what it hides behind it, alpha output and background.
                const V v_alpha = col_dot[v] * t - behind[v] * ra + T_final[v] * ra * (va[v] - bg_dot[v]);
                behind[v] += f * col_dot[v];
                // The 0.999 cap is flat: no gradient through a capped alpha (as autograd of clamp).
                const I flows = valid & (raw <= S(kAlphaMax));
                const V v_sigma = flows ? -raw * v_alpha : zero;
                v_a += S(0.5) * v_sigma * dx * dx;
                v_b += v_sigma * dx * dy;
                v_c += S(0.5) * v_sigma * dy * dy;
                v_mx += v_sigma * (ca * dx + cb * dy);
                v_my += v_sigma * (cb * dx + cc * dy);
                v_op += flows ? vis * v_alpha : zero;
                any |= valid;
            }
        }
        S* out = bw.rows + bw.slots[k] * R;
        if (lane_sum<L>(any) == 0) {
            std::fill_n(out, R, S(0));
            continue;
        }
        out[kRowMeanX] = lane_sum<L>(v_mx);
        out[kRowMeanY] = lane_sum<L>(v_my);
        out[kRowConicA] = lane_sum<L>(v_a);
        out[kRowConicB] = lane_sum<L>(v_b);
        out[kRowConicC] = lane_sum<L>(v_c);
        out[kRowOpacity] = lane_sum<L>(v_op);
        for (int64_t ch = 0; ch < D; ++ch) {
            V sum = zero;
            for (int64_t row = r.row0; row < r.row1; ++row)
                for (int64_t v = layout.first(row, r); v < layout.end(row, r); ++v) sum += fac[v] * vr[ch * nv + v];
            out[kRowColor + ch] = lane_sum<L>(sum);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Instruction sets: each tile function is compiled for the widest vectors of each; the CPU decides.

enum class Isa : int { kBaseline = 0, kAvx2 = 1 };
constexpr int kIsaCount = 2;
const char* const kIsaNames[kIsaCount] = {"baseline", "avx2"};

#if defined(__x86_64__) && defined(__GNUC__)
#define RESHOOT_X86 1
#define RESHOOT_TARGET(t) __attribute__((target(t)))
#else
#define RESHOOT_TARGET(t)
#endif

Isa best_isa() {
#ifdef RESHOOT_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) return Isa::kAvx2;
#endif
    return Isa::kBaseline;
}

std::atomic<int>& isa_in_use() {
    static std::atomic<int> isa{int(best_isa())};
    return isa;
}

#ifdef RESHOOT_X86
template <typename S>
RESHOOT_TARGET("avx2")
void forward_tile_avx2(const CameraInputs<S>& in, const TilePixels& tp, int64_t width, const ForwardOutputs<S>& out) {
    forward_tile_impl<S, 32 / sizeof(S)>(in, tp, width, out);
}
template <typename S>
RESHOOT_TARGET("avx2")
void backward_tile_avx2(const CameraInputs<S>& in, const TilePixels& tp, int64_t width, const BackwardInputs<S>& bw) {
    backward_tile_impl<S, 32 / sizeof(S)>(in, tp, width, bw);
}
#endif
template <typename S>
void forward_tile_baseline(const CameraInputs<S>& in, const TilePixels& tp, int64_t width,
                           const ForwardOutputs<S>& out) {
    forward_tile_impl<S, 16 / sizeof(S)>(in, tp, width, out);
}
template <typename S>
void backward_tile_baseline(const CameraInputs<S>& in, const TilePixels& tp, int64_t width,
                            const BackwardInputs<S>& bw) {
    backward_tile_impl<S, 16 / sizeof(S)>(in, tp, width, bw);
}

template <typename S>
void forward_tile(Isa isa, const CameraInputs<S>& in, const TilePixels& tp, int64_t width,
                  const ForwardOutputs<S>& out) {
#ifdef RESHOOT_X86
    if (isa == Isa::kAvx2) return forward_tile_avx2<S>(in, tp, width, out);
#endif
    forward_tile_baseline<S>(in, tp, width, out);
}

template <typename S>
void backward_tile(Isa isa, const CameraInputs<S>& in, const TilePixels& tp, int64_t width,
                   const BackwardInputs<S>& bw) {
#ifdef RESHOOT_X86
    if (isa == Isa::kAvx2) return backward_tile_avx2<S>(in, tp, width, bw);
#endif
    backward_tile_baseline<S>(in, tp, width, bw);
}

// The instruction set in use ("avx2" or "baseline").
std::string get_isa() { return kIsaNames[isa_in_use().load()]; }

// Use another instruction set (tests run every one the CPU supports); "best" restores the default.
void set_isa(const std::string& name) {
    const int best = int(best_isa());
    int wanted = name == "best" ? best : -1;
    for (int i = 0; i < kIsaCount; ++i)
        if (name == kIsaNames[i]) wanted = i;
    TORCH_CHECK(wanted >= 0, "unknown instruction set '", name, "': use avx2, baseline or best");
    TORCH_CHECK(wanted <= best, "this CPU does not support ", name, " (best: ", kIsaNames[best], ")");
    isa_in_use().store(wanted);
}

// Instruction sets this CPU can run, best first.
std::vector<std::string> supported_isas() {
    std::vector<std::string> names;
    for (int i = int(best_isa()); i >= 0; --i) names.push_back(kIsaNames[i]);
    return names;
}

// ---------------------------------------------------------------------------------------------------
// Entry points.

Grid make_grid(const at::Tensor& means2d, int64_t width, int64_t height, int64_t tile_size) {
    TORCH_CHECK(width > 0 && height > 0, "image size must be positive, got ", width, "x", height);
    TORCH_CHECK(tile_size > 0, "tile_size must be positive, got ", tile_size);
    return {means2d.size(0), means2d.size(1), width, height, tile_size,
            (width + tile_size - 1) / tile_size, (height + tile_size - 1) / tile_size};
}

// Shapes, dtypes and layout of the inputs both passes share (the Python wrapper already validated
// them for users; this guards the raw entry points against out-of-bounds reads).
void check_inputs(const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& colors,
                  const at::Tensor& opacities, const std::optional<at::Tensor>& backgrounds) {
    TORCH_CHECK(means2d.dim() == 3 && means2d.size(2) == 2, "means2d must be [C, N, 2]");
    const int64_t C = means2d.size(0), N = means2d.size(1);
    TORCH_CHECK(conics.dim() == 3 && conics.size(0) == C && conics.size(1) == N && conics.size(2) == 3,
                "conics must be [C, N, 3]");
    TORCH_CHECK(colors.dim() == 3 && colors.size(0) == C && colors.size(1) == N, "colors must be [C, N, D]");
    TORCH_CHECK(opacities.dim() == 2 && opacities.size(0) == C && opacities.size(1) == N, "opacities must be [C, N]");
    std::vector<const at::Tensor*> all = {&means2d, &conics, &colors, &opacities};
    if (backgrounds.has_value()) {
        TORCH_CHECK(backgrounds->dim() == 2 && backgrounds->size(0) == C && backgrounds->size(1) == colors.size(2),
                    "backgrounds must be [C, D]");
        all.push_back(&*backgrounds);
    }
    for (const at::Tensor* t : all) {
        TORCH_CHECK(t->device().is_cpu() && t->is_contiguous(), "inputs must be contiguous CPU tensors");
        TORCH_CHECK(t->scalar_type() == means2d.scalar_type(), "all float inputs must share one dtype");
    }
}

// A per-pixel tensor of the forward or backward pass: [C, H, W] (+ trailing dims), contiguous.
void check_image(const at::Tensor& t, const Grid& grid, std::vector<int64_t> trailing, at::ScalarType dtype,
                 const char* name) {
    std::vector<int64_t> shape = {grid.cameras, grid.height, grid.width};
    shape.insert(shape.end(), trailing.begin(), trailing.end());
    TORCH_CHECK(t.sizes().vec() == shape && t.is_contiguous() && t.scalar_type() == dtype, name,
                ": wrong shape, dtype or layout");
}

template <typename S>
CameraInputs<S> camera_inputs(const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& colors,
                              const at::Tensor& opacities, const std::optional<at::Tensor>& backgrounds,
                              const Bins& bins, const Grid& grid, int64_t c, int64_t tile) {
    const int64_t N = grid.gaussians, D = colors.size(2);
    const int64_t* offsets = bins.tile_offsets.data_ptr<int64_t>() + c * (grid.tiles() + 1);
    return {means2d.data_ptr<S>() + c * N * 2,
            conics.data_ptr<S>() + c * N * 3,
            colors.data_ptr<S>() + c * N * D,
            opacities.data_ptr<S>() + c * N,
            backgrounds.has_value() ? backgrounds->data_ptr<S>() + c * D : nullptr,
            bins.gauss_ids.data_ptr<int32_t>() + offsets[tile],
            offsets[tile + 1] - offsets[tile],
            D};
}

template <typename S>
std::vector<at::Tensor> forward_typed(const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& colors,
                                      const at::Tensor& opacities, const at::Tensor& depths, const at::Tensor& radii,
                                      const std::optional<at::Tensor>& backgrounds, const Grid& grid) {
    const int64_t C = grid.cameras, H = grid.height, W = grid.width, D = colors.size(2);
    const Bins bins = bin_gaussians<S>(means2d, depths, radii, grid);
    const auto opts = means2d.options();
    at::Tensor render = at::empty({C, H, W, D}, opts);
    at::Tensor alpha = at::empty({C, H, W}, opts);
    at::Tensor transmittance = at::empty({C, H, W}, opts);
    at::Tensor last = at::empty({C, H, W}, opts.dtype(at::kInt));

    const Isa isa = Isa(isa_in_use().load());
    const int64_t jobs = C * grid.tiles();
#pragma omp parallel for schedule(dynamic, 1) num_threads(at::get_num_threads())
    for (int64_t job = 0; job < jobs; ++job) {
        const int64_t c = job / grid.tiles(), tile = job % grid.tiles();
        const CameraInputs<S> in = camera_inputs<S>(means2d, conics, colors, opacities, backgrounds, bins, grid, c, tile);
        const ForwardOutputs<S> out{render.data_ptr<S>() + c * H * W * D, alpha.data_ptr<S>() + c * H * W,
                                    transmittance.data_ptr<S>() + c * H * W, last.data_ptr<int32_t>() + c * H * W};
        forward_tile<S>(isa, in, tile_pixels(grid, tile), W, out);
    }
    return {render, alpha, transmittance, last, bins.tile_offsets, bins.gauss_ids, bins.isect_slots,
            bins.gauss_offsets};
}

template <typename S>
std::vector<at::Tensor> backward_typed(const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& colors,
                                       const at::Tensor& opacities, const std::optional<at::Tensor>& backgrounds,
                                       const at::Tensor& transmittance, const at::Tensor& last, const Bins& bins,
                                       const at::Tensor& v_render, const at::Tensor& v_alpha, const Grid& grid) {
    const int64_t C = grid.cameras, N = grid.gaussians, H = grid.height, W = grid.width, D = colors.size(2);
    const int64_t R = kRowColor + D, n_isects = bins.gauss_ids.size(0);
    at::Tensor rows = at::empty({n_isects, R}, means2d.options());

    const Isa isa = Isa(isa_in_use().load());
    const int64_t jobs = C * grid.tiles();
#pragma omp parallel for schedule(dynamic, 1) num_threads(at::get_num_threads())
    for (int64_t job = 0; job < jobs; ++job) {
        const int64_t c = job / grid.tiles(), tile = job % grid.tiles();
        const CameraInputs<S> in = camera_inputs<S>(means2d, conics, colors, opacities, backgrounds, bins, grid, c, tile);
        const int64_t start = bins.tile_offsets.data_ptr<int64_t>()[c * (grid.tiles() + 1) + tile];
        const BackwardInputs<S> bw{transmittance.data_ptr<S>() + c * H * W, last.data_ptr<int32_t>() + c * H * W,
                                   v_render.data_ptr<S>() + c * H * W * D, v_alpha.data_ptr<S>() + c * H * W,
                                   bins.isect_slots.data_ptr<int64_t>() + start, rows.data_ptr<S>()};
        backward_tile<S>(isa, in, tile_pixels(grid, tile), W, bw);
    }

    // Each Gaussian adds up its own rows (contiguous in Gaussian-major order): parallel, deterministic.
    at::Tensor v_means2d = at::zeros({C, N, 2}, means2d.options());
    at::Tensor v_conics = at::zeros({C, N, 3}, means2d.options());
    at::Tensor v_colors = at::zeros({C, N, D}, means2d.options());
    at::Tensor v_opacities = at::zeros({C, N}, means2d.options());
    const S* rp = rows.data_ptr<S>();
    const int64_t* g_off = bins.gauss_offsets.data_ptr<int64_t>();
    S* vm = v_means2d.data_ptr<S>();
    S* vc = v_conics.data_ptr<S>();
    S* vcol = v_colors.data_ptr<S>();
    S* vo = v_opacities.data_ptr<S>();
#pragma omp parallel for schedule(static) num_threads(at::get_num_threads())
    for (int64_t i = 0; i < C * N; ++i) {
        const int64_t c = i / N, g = i % N;
        const int64_t begin = g_off[c * (N + 1) + g], end = g_off[c * (N + 1) + g + 1];
        for (int64_t s = begin; s < end; ++s) {
            const S* row = rp + s * R;
            vm[2 * i] += row[kRowMeanX];
            vm[2 * i + 1] += row[kRowMeanY];
            vc[3 * i] += row[kRowConicA];
            vc[3 * i + 1] += row[kRowConicB];
            vc[3 * i + 2] += row[kRowConicC];
            vo[i] += row[kRowOpacity];
            for (int64_t ch = 0; ch < D; ++ch) vcol[i * D + ch] += row[kRowColor + ch];
        }
    }
    return {v_means2d, v_conics, v_colors, v_opacities};
}

// Forward entry point. Shapes: means2d [C, N, 2], conics [C, N, 3], colors [C, N, D], opacities [C, N],
// depths [C, N] (same float dtype), radii [C, N] int32, backgrounds [C, D] or None.
// Returns render [C, H, W, D], alpha [C, H, W], transmittance [C, H, W], last [C, H, W] int32 and the
// binning (tile_offsets, gauss_ids, isect_slots, gauss_offsets) for the backward pass.
std::vector<at::Tensor> rasterize_forward(const at::Tensor& means2d, const at::Tensor& conics,
                                          const at::Tensor& colors, const at::Tensor& opacities,
                                          const at::Tensor& depths, const at::Tensor& radii,
                                          const std::optional<at::Tensor>& backgrounds, int64_t width,
                                          int64_t height, int64_t tile_size) {
    check_inputs(means2d, conics, colors, opacities, backgrounds);
    TORCH_CHECK(depths.sizes() == opacities.sizes() && depths.scalar_type() == means2d.scalar_type() &&
                    depths.is_contiguous(), "depths must be [C, N], contiguous, of the inputs' dtype");
    TORCH_CHECK(radii.sizes() == opacities.sizes() && radii.scalar_type() == at::kInt && radii.is_contiguous(),
                "radii must be [C, N], contiguous int32");
    const Grid grid = make_grid(means2d, width, height, tile_size);
    if (means2d.scalar_type() == at::kFloat)
        return forward_typed<float>(means2d, conics, colors, opacities, depths, radii, backgrounds, grid);
    TORCH_CHECK(means2d.scalar_type() == at::kDouble, "the CPU rasterizer supports float32 and float64");
    return forward_typed<double>(means2d, conics, colors, opacities, depths, radii, backgrounds, grid);
}

// Backward entry point: the forward's inputs, its saved outputs and the gradients of render
// [C, H, W, D] and alpha [C, H, W]. Returns v_means2d, v_conics, v_colors, v_opacities.
std::vector<at::Tensor> rasterize_backward(const at::Tensor& means2d, const at::Tensor& conics,
                                           const at::Tensor& colors, const at::Tensor& opacities,
                                           const std::optional<at::Tensor>& backgrounds,
                                           const at::Tensor& transmittance, const at::Tensor& last,
                                           const at::Tensor& tile_offsets, const at::Tensor& gauss_ids,
                                           const at::Tensor& isect_slots, const at::Tensor& gauss_offsets,
                                           const at::Tensor& v_render, const at::Tensor& v_alpha, int64_t width,
                                           int64_t height, int64_t tile_size) {
    check_inputs(means2d, conics, colors, opacities, backgrounds);
    const Grid grid = make_grid(means2d, width, height, tile_size);
    const at::ScalarType dtype = means2d.scalar_type();
    check_image(transmittance, grid, {}, dtype, "transmittance");
    check_image(last, grid, {}, at::kInt, "last");
    check_image(v_render, grid, {colors.size(2)}, dtype, "v_render");
    check_image(v_alpha, grid, {}, dtype, "v_alpha");
    TORCH_CHECK(tile_offsets.sizes().vec() == std::vector<int64_t>({grid.cameras, grid.tiles() + 1}) &&
                    gauss_offsets.sizes().vec() == std::vector<int64_t>({grid.cameras, grid.gaussians + 1}) &&
                    gauss_ids.numel() == isect_slots.numel(),
                "the binning tensors do not match this image and these Gaussians");
    const Bins bins{tile_offsets, gauss_ids, isect_slots, gauss_offsets};
    if (means2d.scalar_type() == at::kFloat)
        return backward_typed<float>(means2d, conics, colors, opacities, backgrounds, transmittance, last, bins,
                                     v_render, v_alpha, grid);
    TORCH_CHECK(means2d.scalar_type() == at::kDouble, "the CPU rasterizer supports float32 and float64");
    return backward_typed<double>(means2d, conics, colors, opacities, backgrounds, transmittance, last, bins,
                                  v_render, v_alpha, grid);
}

}  // namespace

// The fused projection (project_cpu.cpp), bound in this module.
std::vector<at::Tensor> project_forward(const at::Tensor& means, const at::Tensor& quats, const at::Tensor& log_scales,
                                        const at::Tensor& viewmats, const at::Tensor& Ks, int64_t width,
                                        int64_t height, double near, double eps2d);
std::vector<at::Tensor> project_backward(const at::Tensor& means, const at::Tensor& quats,
                                         const at::Tensor& log_scales, const at::Tensor& viewmats,
                                         const at::Tensor& Ks, const at::Tensor& radii, int64_t width,
                                         int64_t height, double near, double eps2d, const at::Tensor& v_means2d,
                                         const at::Tensor& v_conics, const at::Tensor& v_depths);

// reshoot's CPU splat kernels, registered as torch operators (torch.ops.reshoot_splats_cpu.*; build.py
// loads the library with torch.ops.load_library): a registration needs only <torch/library.h>, where a
// pybind11 module needs <torch/extension.h>. Schemas are inferred from the C++ signatures.
TORCH_LIBRARY(reshoot_splats_cpu, m) {
    m.def("project_forward", &project_forward);    // 3D Gaussians to 2D image Gaussians, fused
    m.def("project_backward", &project_backward);  // gradients of means, quaternions, log scales
    m.def("rasterize_forward", &rasterize_forward);  // tile binning, depth sort, compositing
    m.def("rasterize_backward", &rasterize_backward);  // per-Gaussian gradients
    m.def("get_isa", &get_isa);                    // instruction set in use: avx2 or baseline
    m.def("set_isa", &set_isa);                    // use another supported instruction set (or "best")
    m.def("supported_isas", &supported_isas);      // instruction sets this CPU can run, best first
}

// Host side of the decode: parameter checks and the C++ CPU implementation.
//
// The CPU decode reads the inputs the way the cache can follow: work is cut into tasks of up to
// kChunk cells of one (image, level, anchor) plane; a task scans the objectness channel (SSE2), then
// reads the class channels one plane at a time — sparse: only the candidates' cells, in increasing
// order, with the next planes prefetched and no data-dependent branches; dense (many candidates):
// every cell, SSE2 — and finally the box channels of the kept anchors. Tasks run on std::threads
// (dynamic scheduling); the worker that completes an image's last task applies max_detections (top-K
// by score, ties by anchor order) and writes that image's rows in anchor order. Results do not
// depend on the thread count.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__linux__)
#include <sched.h>
#endif

#include "yoloDecode.h"

namespace trtdeploy {
namespace yolo {

const char* finalize(DecodeParams& p, int max_stride) {
  if (p.num_levels < 1 || p.num_levels > kMaxLevels) return "YoloLayer_TRT: 1 to 8 input levels are supported";
  if (p.num_anchors < 1 || p.num_anchors > kMaxAnchors) return "YoloLayer_TRT: 1 to 16 anchors per level are supported";
  if (p.num_classes < 1) return "YoloLayer_TRT: num_classes must be >= 1";
  if (p.batch < 0) return "YoloLayer_TRT: negative batch";
  if (max_stride < 1) return "YoloLayer_TRT: max_stride must be >= 1";
  if (p.score_mode != 0 && p.score_mode != 1) return "YoloLayer_TRT: score_mode must be 0 or 1";
  if (static_cast<long long>(p.num_anchors) * (p.num_classes + 5) > std::numeric_limits<int>::max())
    return "YoloLayer_TRT: too many channels";
  const int last_h = p.grid_h[p.num_levels - 1];
  long long offset = 0;
  for (int l = 0; l < p.num_levels; ++l) {
    if (p.grid_h[l] < 1 || p.grid_w[l] < 1) return "YoloLayer_TRT: empty input level";
    if ((static_cast<long long>(max_stride) * last_h) % p.grid_h[l] != 0)
      return "YoloLayer_TRT: level grid sizes are not max_stride-compatible (inputs must go from the finest "
             "to the coarsest level)";
    p.stride[l] = static_cast<float>(static_cast<long long>(max_stride) * last_h / p.grid_h[l]);
    p.cell_offset[l] = static_cast<int>(offset);
    offset += static_cast<long long>(p.num_anchors) * p.grid_h[l] * p.grid_w[l];
    if (offset > kMaxAnchorsPerImage) return "YoloLayer_TRT: more than 2^30 anchors per image are not supported";
  }
  p.cell_offset[p.num_levels] = static_cast<int>(offset);
  if (p.max_detections <= 0 || p.max_detections > offset) p.max_detections = static_cast<int>(offset);
  return nullptr;
}

namespace {

constexpr int kChunk = 8192;       // cells per task (a 640x640 level-0 plane is one task)
constexpr int kDenseRatio = 8;     // dense class reads when >= 1 cell in 8 is a candidate
constexpr int kDenseBlock = 512;   // cells per block of the dense class search
constexpr int kPrefetchPlanes = 2;  // sparse path: prefetch the candidates' cells this many class planes ahead

// IEEE half -> float, exact for every bit pattern (subnormals, inf, NaN), without branches (a
// mispredicted branch in the gather loops discards the loads in flight), and independent of the
// FTZ/DAZ flags (a subnormal half becomes a normal float through an int -> float conversion).
inline float half_to_float(uint16_t h) {
  const uint32_t a = h & 0x7FFFu;
  const float sub = static_cast<float>(static_cast<int32_t>(a)) * 5.9604644775390625e-8f;  // a * 2^-24
  uint32_t sub_bits;
  std::memcpy(&sub_bits, &sub, sizeof(sub_bits));
  const uint32_t inf_mask = 0u - static_cast<uint32_t>(a >= 0x7C00u), sub_mask = 0u - static_cast<uint32_t>(a < 0x400u);
  uint32_t bits = (((a << 13) | 0x7F800000u) & inf_mask) | (((a << 13) + (112u << 23)) & ~inf_mask);
  bits = (sub_bits & sub_mask) | (bits & ~sub_mask);
  bits |= static_cast<uint32_t>(h & 0x8000u) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

inline void prefetch(const void* p) {
#if defined(__GNUC__)
  __builtin_prefetch(p);
#else
  (void)p;
#endif
}

inline float to_float(float v) { return v; }
inline float to_float(uint16_t v) { return half_to_float(v); }

// Order-preserving int key of a half: a > b <=> key(a) > key(b) for non-NaN halves, -0 and +0 equal,
// NaN below -inf (never wins). Lets the fp16 class search compare without converting every value.
inline int32_t half_key(uint16_t h) {
  const int32_t a = h & 0x7FFF, s = -static_cast<int32_t>(h >> 15);
  const int32_t k = (a ^ s) - s;  // sign-magnitude -> two's complement
  return a > 0x7C00 ? std::numeric_limits<int32_t>::min() : k;
}

#if defined(__SSE2__)
inline __m128i select(__m128i mask, __m128i a, __m128i b) {  // mask ? a : b
  return _mm_or_si128(_mm_and_si128(mask, a), _mm_andnot_si128(mask, b));
}
// 4 halves (zero-extended to 32 bits) -> 4 floats, the same operations as half_to_float
inline __m128 half4_to_float4(__m128i x) {
  const __m128i a = _mm_and_si128(x, _mm_set1_epi32(0x7FFF));
  const __m128i sign = _mm_slli_epi32(_mm_and_si128(x, _mm_set1_epi32(0x8000)), 16);
  const __m128i shifted = _mm_slli_epi32(a, 13);
  const __m128i normal = _mm_add_epi32(shifted, _mm_set1_epi32(112 << 23));
  const __m128i inf_nan = _mm_or_si128(shifted, _mm_set1_epi32(0x7F800000));
  const __m128i sub = _mm_castps_si128(_mm_mul_ps(_mm_cvtepi32_ps(a), _mm_set1_ps(5.9604644775390625e-8f)));
  __m128i r = select(_mm_cmpgt_epi32(a, _mm_set1_epi32(0x7BFF)), inf_nan, normal);
  r = select(_mm_cmplt_epi32(a, _mm_set1_epi32(0x400)), sub, r);
  return _mm_castsi128_ps(_mm_or_si128(r, sign));
}
#endif

// dst[i] = float(src[i]) for i < n
void to_float_n(const uint16_t* src, int n, float* dst) {
  int i = 0;
#if defined(__SSE2__)
  const __m128i zero = _mm_setzero_si128();
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm_storeu_ps(dst + i, half4_to_float4(_mm_unpacklo_epi16(h, zero)));
    _mm_storeu_ps(dst + i + 4, half4_to_float4(_mm_unpackhi_epi16(h, zero)));
  }
#endif
  for (; i < n; ++i) dst[i] = half_to_float(src[i]);
}

// Indices i < n with v[i] > thr (NaN fails), in increasing order.
int scan_greater(const float* v, int n, float thr, uint32_t* out) {
  int m = 0, i = 0;
#if defined(__SSE2__)
  const __m128 t = _mm_set1_ps(thr);
  for (; i + 16 <= n; i += 16) {
    unsigned bits = static_cast<unsigned>(_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(v + i), t))) |
                    static_cast<unsigned>(_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(v + i + 4), t))) << 4 |
                    static_cast<unsigned>(_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(v + i + 8), t))) << 8 |
                    static_cast<unsigned>(_mm_movemask_ps(_mm_cmpgt_ps(_mm_loadu_ps(v + i + 12), t))) << 12;
    while (bits) {
      out[m++] = static_cast<uint32_t>(i + __builtin_ctz(bits));
      bits &= bits - 1;
    }
  }
#endif
  for (; i < n; ++i)
    if (v[i] > thr) out[m++] = static_cast<uint32_t>(i);
  return m;
}

// best[i], cls[i] = v[i], c where v[i] > best[i] (NaN never wins), for i < n
#if defined(__SSE2__)
inline void update4(__m128 x, float* best, int32_t* cls, __m128i cv) {
  const __m128 b = _mm_loadu_ps(best);
  const __m128i gt = _mm_castps_si128(_mm_cmpgt_ps(x, b));
  _mm_storeu_ps(best, _mm_max_ps(x, b));  // x > b ? x : b
  _mm_storeu_si128(reinterpret_cast<__m128i*>(cls),
                   select(gt, cv, _mm_loadu_si128(reinterpret_cast<const __m128i*>(cls))));
}
#endif
void update_dense(const float* v, int n, int c, float* best, int32_t* cls) {
  int i = 0;
#if defined(__SSE2__)
  const __m128i cv = _mm_set1_epi32(c);
  for (; i + 4 <= n; i += 4) update4(_mm_loadu_ps(v + i), best + i, cls + i, cv);
#endif
  for (; i < n; ++i) {
    const bool gt = v[i] > best[i];
    best[i] = gt ? v[i] : best[i];
    cls[i] = gt ? c : cls[i];
  }
}
void update_dense(const uint16_t* v, int n, int c, float* best, int32_t* cls) {
  int i = 0;
#if defined(__SSE2__)
  const __m128i cv = _mm_set1_epi32(c), zero = _mm_setzero_si128();
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i));
    update4(half4_to_float4(_mm_unpacklo_epi16(h, zero)), best + i, cls + i, cv);
    update4(half4_to_float4(_mm_unpackhi_epi16(h, zero)), best + i + 4, cls + i + 4, cv);
  }
#endif
  for (; i < n; ++i) {
    const float x = half_to_float(v[i]);
    const bool gt = x > best[i];
    best[i] = gt ? x : best[i];
    cls[i] = gt ? c : cls[i];
  }
}

struct Candidate {
  float box[4];
  float score;
  int32_t cls;
  int32_t anchor;  // index in anchor order within the image
};

// Strict total order "a is a better detection than b": higher score, then lower anchor index.
inline bool better(const Candidate& a, const Candidate& b) {
  return a.score > b.score || (a.score == b.score && a.anchor < b.anchor);
}

struct Task {
  int b, l, a, c0, n;               // cells [c0, c0 + n) of plane (b, l, a)
  std::vector<Candidate> found;     // its kept anchors, in anchor order
};

template <typename T>
struct Buffer {  // kChunk values, not initialized (a per-call memset of every worker's scratch costs more
                 // than a B=1 decode's gathers)
  std::unique_ptr<T[]> p{new T[kChunk]};
  T* data() { return p.get(); }
};

struct Scratch {
  Buffer<float> obj, best;
  Buffer<int32_t> cls, key;
  Buffer<uint32_t> cand;
  Buffer<uint16_t> best_bits;
};

// One task: its kept anchors, in anchor order, into task.found.
template <typename T>
void decode_task(const DecodeParams& p, Task& task, Scratch& w) {
  const int no = p.num_classes + 5;
  const size_t hw = static_cast<size_t>(p.grid_h[task.l]) * p.grid_w[task.l];
  const T* base = static_cast<const T*>(p.inputs[task.l]) +
                  (static_cast<size_t>(task.b) * p.num_anchors + task.a) * no * hw + task.c0;
  const int n = task.n;
  const float thr = p.score_threshold;
  auto as_float = [&](const T* src, float* scratch) -> const float* {  // n values of a plane
    if constexpr (sizeof(T) == sizeof(float)) {
      (void)scratch;
      return reinterpret_cast<const float*>(src);
    } else {
      to_float_n(src, n, scratch);
      return scratch;
    }
  };
  task.found.clear();
  const float* obj = as_float(base + 4 * hw, w.obj.data());
  uint32_t* cand = w.cand.data();
  const int m = scan_greater(obj, n, thr, cand);
  if (m == 0) return;

  // best class per candidate: best[j], cls[j] for j < m
  float* best = w.best.data();
  int32_t* cls = w.cls.data();
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (static_cast<long long>(m) * kDenseRatio >= n) {  // dense: every cell, contiguous, SIMD
    std::fill(best, best + n, neg_inf);
    std::fill(cls, cls + n, 0);
    for (int i0 = 0; i0 < n; i0 += kDenseBlock) {  // a block's best/cls stay in L1 over the classes
      const int nb = std::min(kDenseBlock, n - i0);
      for (int c = 0; c < p.num_classes; ++c)
        update_dense(base + (5 + static_cast<size_t>(c)) * hw + i0, nb, c, best + i0, cls + i0);
    }
    for (int j = 0; j < m; ++j) {  // compact to candidates (cand[j] >= j: in place is safe)
      best[j] = best[cand[j]];
      cls[j] = cls[cand[j]];
    }
  } else {  // sparse: the candidates' cells only, one class plane at a time, in increasing order
    // branch-free updates (a mispredict would discard the loads in flight); fp16 compares int keys
    // and converts each candidate's winner once
    int32_t* key = w.key.data();
    uint16_t* best_bits = w.best_bits.data();
    std::fill(best, best + m, neg_inf);
    std::fill(cls, cls + m, 0);
    if constexpr (sizeof(T) == sizeof(uint16_t)) {
      std::fill(key, key + m, half_key(0xFC00));  // -inf
      std::fill(best_bits, best_bits + m, uint16_t{0xFC00});
    }
    for (int c = 0; c < p.num_classes; ++c) {
      const T* src = base + (5 + static_cast<size_t>(c)) * hw;
      if (c + kPrefetchPlanes < p.num_classes) {
        const T* ahead = src + kPrefetchPlanes * hw;
        for (int j = 0; j < m; ++j) prefetch(ahead + cand[j]);
      }
      for (int j = 0; j < m; ++j) {
        int32_t gt;
        if constexpr (sizeof(T) == sizeof(uint16_t)) {
          const uint16_t h = src[cand[j]];
          const int32_t k = half_key(h);
          gt = -static_cast<int32_t>(k > key[j]);
          key[j] = (k & gt) | (key[j] & ~gt);
          best_bits[j] = static_cast<uint16_t>((h & gt) | (best_bits[j] & ~gt));
        } else {
          const float v = src[cand[j]], b = best[j];
          gt = -static_cast<int32_t>(v > b);
          best[j] = v > b ? v : b;
        }
        cls[j] = (c & gt) | (cls[j] & ~gt);
      }
    }
    if constexpr (sizeof(T) == sizeof(uint16_t))
      for (int j = 0; j < m; ++j) best[j] = half_to_float(best_bits[j]);
  }

  const int gw = p.grid_w[task.l];
  const int anchor0 = p.cell_offset[task.l] + task.a * static_cast<int>(hw) + task.c0;
  task.found.reserve(static_cast<size_t>(m));
  for (int j = 0; j < m; ++j) {
    const int i = static_cast<int>(cand[j]);
    const float o = obj[i];
    const float score = p.score_mode == 0 ? o * best[j] : o;
    if (!(score > thr)) continue;
    const int cell = task.c0 + i;
    const int y = cell / gw, x = cell - y * gw;
    Candidate d;
    make_box(p, task.l, task.a, x, y, to_float(base[i]), to_float(base[hw + i]), to_float(base[2 * hw + i]),
             to_float(base[3 * hw + i]), d.box);
    d.score = score;
    d.cls = cls[j];
    d.anchor = anchor0 + i;
    task.found.push_back(d);
  }
}

int available_cores() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1u, std::thread::hardware_concurrency());
}

// fn(i, slot) for every i in [0, n), on the calling thread (slot 0) and up to threads - 1 helpers
// (slots 1..), dynamic scheduling. Returns when every task is done: it never waits for a helper the
// OS has not started yet (on a busy machine that can take a time slice); a helper that starts after
// the work is over finds the job closed and leaves. The first exception is rethrown.
struct Job {
  std::mutex mutex;
  std::condition_variable idle;
  bool closed = false;
  int active = 0;
  std::atomic<int> next{0};
  int n = 0;
  std::function<void(int, int)> fn;
  std::exception_ptr error;

  void work(int slot) {
    try {
      for (int i; (i = next.fetch_add(1)) < n;) fn(i, slot);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error) error = std::current_exception();
      next.store(n);
    }
  }
};

template <typename F>
void run_tasks(int n, int threads, F&& fn) {
  threads = std::max(1, std::min(threads, n));
  if (threads == 1) {
    for (int i = 0; i < n; ++i) fn(i, 0);
    return;
  }
  auto job = std::make_shared<Job>();
  job->n = n;
  job->fn = [&fn](int i, int slot) { fn(i, slot); };  // only called while the job is open
  for (int slot = 1; slot < threads; ++slot) {
    try {
      std::thread([job, slot] {
        {
          std::lock_guard<std::mutex> lock(job->mutex);
          if (job->closed) return;
          ++job->active;
        }
        job->work(slot);
        std::lock_guard<std::mutex> lock(job->mutex);
        if (--job->active == 0) job->idle.notify_all();
      }).detach();
    } catch (const std::system_error&) {
      break;  // no more threads: the caller does the rest
    }
  }
  job->work(0);
  std::unique_lock<std::mutex> lock(job->mutex);
  job->closed = true;
  job->idle.wait(lock, [&] { return job->active == 0; });
  if (job->error) std::rethrow_exception(job->error);
}

// Rows of image b from its tasks' kept anchors: all of them, or the `rows` best (those not worse than
// the rows-th best; `better` is a strict total order, so exactly `rows`), in anchor order.
void write_image(std::vector<Task>::const_iterator first, std::vector<Task>::const_iterator last, int rows,
                 int32_t* num, float* bx, float* sc, int32_t* cl, bool outputs_zeroed) {
  size_t n_found = 0;
  for (auto t = first; t != last; ++t) n_found += t->found.size();
  const Candidate* kth = nullptr;
  if (n_found > static_cast<size_t>(rows)) {
    std::vector<const Candidate*> order;
    order.reserve(n_found);
    for (auto t = first; t != last; ++t)
      for (const Candidate& d : t->found) order.push_back(&d);
    std::nth_element(order.begin(), order.begin() + (rows - 1), order.end(),
                     [](const Candidate* x, const Candidate* y) { return better(*x, *y); });
    kth = order[rows - 1];
  }
  int n = 0;
  for (auto t = first; t != last; ++t)
    for (const Candidate& d : t->found) {
      if (kth && better(*kth, d)) continue;
      std::memcpy(bx + static_cast<size_t>(n) * 4, d.box, sizeof(d.box));
      sc[n] = d.score;
      cl[n] = d.cls;
      ++n;
    }
  *num = n;
  if (!outputs_zeroed) {
    std::fill(bx + static_cast<size_t>(n) * 4, bx + static_cast<size_t>(rows) * 4, 0.0f);
    std::fill(sc + n, sc + rows, 0.0f);
    std::fill(cl + n, cl + rows, 0);
  }
}

template <typename T>
void decode_cpu_typed(const DecodeParams& p, int32_t* num_detections, float* boxes, float* scores,
                      int32_t* classes, int threads, bool outputs_zeroed) {
  const int rows = p.max_detections;
  std::vector<Task> tasks;
  std::vector<size_t> image_first_task(p.batch + 1);
  for (int b = 0; b < p.batch; ++b) {
    image_first_task[b] = tasks.size();
    for (int l = 0; l < p.num_levels; ++l)
      for (int a = 0; a < p.num_anchors; ++a) {
        const int hw = p.grid_h[l] * p.grid_w[l];
        for (int c0 = 0; c0 < hw; c0 += kChunk) tasks.push_back({b, l, a, c0, std::min(kChunk, hw - c0), {}});
      }
  }
  image_first_task[p.batch] = tasks.size();
  if (threads <= 0) threads = available_cores();
  if (static_cast<long long>(p.batch) * p.total_anchors() < 4 * kChunk) threads = 1;  // not worth a thread
  threads = std::max(1, std::min<int>(threads, static_cast<int>(tasks.size())));

  // The worker that completes an image's last task writes that image's rows (acq_rel: it sees the
  // other tasks' results).
  std::unique_ptr<std::atomic<int>[]> pending(new std::atomic<int>[p.batch]);
  for (int b = 0; b < p.batch; ++b)
    pending[b].store(static_cast<int>(image_first_task[b + 1] - image_first_task[b]), std::memory_order_relaxed);
  std::vector<Scratch> scratch(threads);
  run_tasks(static_cast<int>(tasks.size()), threads, [&](int i, int slot) {
    decode_task<T>(p, tasks[i], scratch[slot]);
    const int b = tasks[i].b;
    if (pending[b].fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    const size_t r0 = static_cast<size_t>(b) * rows;
    write_image(tasks.cbegin() + image_first_task[b], tasks.cbegin() + image_first_task[b + 1], rows,
                num_detections + b, boxes + r0 * 4, scores + r0, classes + r0, outputs_zeroed);
  });
}

}  // namespace

void decode_cpu(const DecodeParams& p, int32_t* num_detections, float* boxes, float* scores, int32_t* classes,
                int threads, bool outputs_zeroed) {
  if (p.batch == 0) return;
  if (p.fp16)
    decode_cpu_typed<uint16_t>(p, num_detections, boxes, scores, classes, threads, outputs_zeroed);
  else
    decode_cpu_typed<float>(p, num_detections, boxes, scores, classes, threads, outputs_zeroed);
}

}  // namespace yolo
}  // namespace trtdeploy

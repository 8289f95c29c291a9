// CUDA decode: one pass over the inputs, for the whole batch and every level, in one kernel (after a
// memset of the workspace's counters). See plugins/yolo_layer/README.md ("Kernel") for the design.
//
// Work unit: a tile of kThreads consecutive anchors of one image (anchor order = level, anchor, y, x),
// one anchor per thread. Tiles are handed out by an atomic ticket, image-major, so a tile's
// predecessors were taken by blocks that already run (this is what makes the waits below finite).
//
// Per tile:
//   1. each thread reads its anchor's objectness; candidates (obj > threshold) also issue the loads
//      of their 4 box channels right away;
//   2. per warp, the best class of every candidate: when few lanes are candidates, the whole warp
//      reads one candidate's class channels (lane c reads classes c, c+32, ...) and reduces with
//      shuffles; when many are, each candidate lane reads its own (the warp's reads coalesce);
//   3. the tile's kept anchors are ranked (warp ballots, block scan of 8 warp counts) and the tile's
//      offset among the image's kept anchors comes from a decoupled look-back over the image's
//      earlier tiles (status words in the workspace);
//   4. kept anchor number g of the image goes to output row g if g < max_detections, else to the
//      image's overflow area of the workspace (box, score, class).
// Every input byte is read at most once (objectness always; box and class channels only for
// candidates) and every kept anchor is written once.
//
// Then every block waits until all tiles are done (a counter; no block waits before it has failed to
// take a ticket, so all tiles are in the hands of running blocks) and finishes: num_detections,
// zero rows [kept, max_detections) of every image (spread over all blocks), and for images with more
// kept anchors than rows, one block each selects the max_detections best (radix select on the score
// keys; ties by anchor order) and compacts them, in anchor order, into rows [0, max_detections).
//
// Who writes what (no two writers per byte, so no atomics on outputs):
//   rows [0, min(kept, N)) and overflow slots: the tile owning that kept anchor (decode phase); when
//     kept > N, rows [0, N) are rewritten by the one block that owns the image (finish phase);
//   rows [kept, N): the finish phase, row r of the flattened [B*N] range by the block whose slice
//     holds r; num_detections[b]: finish phase, global thread b (grid-stride).
// Memory ordering: status words are 64-bit {flag, count} written and read with relaxed device-scope
// atomics (they carry their own data); rows/overflow written in the decode phase are published by
// __syncthreads + __threadfence + atomicAdd(done) and read after the done-spin + __threadfence +
// __syncthreads (the cooperative-groups grid-sync pattern), with __ldcg (L2) reads.
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cuda/atomic>

#include "yoloDecode.h"

namespace trtdeploy {
namespace yolo {
namespace {

constexpr int kThreads = 256;  // anchors per tile and threads per block
constexpr int kWarps = kThreads / 32;
constexpr unsigned kFull = 0xFFFFFFFFu;
constexpr size_t kAlign = 256;
static_assert(kThreads == 256, "the radix-select histogram has one bin per thread");

// Status word of a tile: flag in the high 32 bits, a count in the low 32 bits. The memset before the
// kernel makes every word kInvalid.
constexpr unsigned long long kInvalid = 0, kAggregate = 1ull << 32, kPrefix = 2ull << 32;
static_assert(kInvalid == 0, "a zeroed status word means: not counted yet");

using AtomicU64 = cuda::atomic_ref<unsigned long long, cuda::thread_scope_device>;

size_t align_up(size_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// Workspace: [header: ticket, done][status: B * tiles u64][overflow: B * (anchors - rows) x
// (float4 box, float score, int class)]. Offsets are computed the same way for sizing and launching.
struct Layout {
  int tiles_per_image = 0;
  long long overflow_per_image = 0;
  size_t status = 0, ov_box = 0, ov_score = 0, ov_cls = 0, total = 0;
};

Layout layout(int batch, int total_anchors, int rows) {
  Layout L;
  L.tiles_per_image = (total_anchors + kThreads - 1) / kThreads;
  L.overflow_per_image = static_cast<long long>(total_anchors) - rows;
  const size_t ov = static_cast<size_t>(batch) * static_cast<size_t>(L.overflow_per_image);
  L.status = kAlign;
  L.ov_box = L.status + align_up(sizeof(unsigned long long) * batch * static_cast<size_t>(L.tiles_per_image));
  L.ov_score = L.ov_box + align_up(sizeof(float4) * ov);
  L.ov_cls = L.ov_score + align_up(sizeof(float) * ov);
  L.total = L.ov_cls + align_up(sizeof(int32_t) * ov);
  return L;
}

struct Outputs {
  int32_t* num;
  float4* boxes;
  float* scores;
  int32_t* classes;
};

struct Work {
  unsigned* ticket;
  unsigned* done;
  unsigned long long* status;  // [B][tiles_per_image]
  float4* ov_box;              // [B][overflow_per_image]
  float* ov_score;
  int32_t* ov_cls;
  int tiles_per_image;
  unsigned num_tiles;  // B * tiles_per_image
  long long overflow_per_image;
};

__device__ __forceinline__ float load(const float* p) { return __ldg(p); }
__device__ __forceinline__ float load(const __half* p) { return __half2float(__ldg(p)); }

// Cost model for the class search of a warp with n candidates and nc classes, in instructions per
// warp: per lane ~nc loads + compares, whatever n is; cooperative ~n * (ceil(nc/32) loads + ~10 for
// the shuffle reduction). To be confirmed with ncu (the README says how).
__device__ __forceinline__ bool cooperative(int n, int nc) { return n * ((nc + 31) / 32 + 10) < nc; }

// (value, class) pairs: larger value wins, equal values -> smaller class. Values are never NaN.
__device__ __forceinline__ void take_better(float v, int c, float& best, int& best_c) {
  if (v > best || (v == best && c < best_c)) {
    best = v;
    best_c = c;
  }
}

// Decoupled look-back (Merrill & Garland) over the image's tiles; called by all 32 lanes of warp 0.
// Publishes this tile's count, returns the number of kept anchors in the image's earlier tiles, and
// publishes the inclusive prefix. status: this image's status words.
__device__ int look_back(unsigned long long* status, int tile, int count) {
  const int lane = threadIdx.x & 31;
  if (tile == 0) {
    if (lane == 0) AtomicU64(status[0]).store(kPrefix | static_cast<unsigned>(count), cuda::memory_order_relaxed);
    return 0;
  }
  if (lane == 0) AtomicU64(status[tile]).store(kAggregate | static_cast<unsigned>(count), cuda::memory_order_relaxed);
  int exclusive = 0;
  int pred = tile - 1;  // lane i looks at tile pred - i
  for (;;) {
    const int t = pred - lane;
    unsigned long long s = t >= 0 ? AtomicU64(status[t]).load(cuda::memory_order_relaxed) : kPrefix;
    unsigned prefix_lanes = __ballot_sync(kFull, (s >> 32) == 2);
    // lanes up to and including the nearest tile with a prefix (all lanes when none has one)
    unsigned needed = prefix_lanes ? (((prefix_lanes & (0u - prefix_lanes)) << 1) - 1u) : kFull;
    while (__ballot_sync(kFull, (s >> 32) == 0) & needed) {  // a needed tile has not counted yet
      __nanosleep(32);
      s = t >= 0 ? AtomicU64(status[t]).load(cuda::memory_order_relaxed) : kPrefix;
      prefix_lanes = __ballot_sync(kFull, (s >> 32) == 2);
      needed = prefix_lanes ? (((prefix_lanes & (0u - prefix_lanes)) << 1) - 1u) : kFull;
    }
    int v = (needed >> lane) & 1u ? static_cast<int>(s & 0xFFFFFFFFull) : 0;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(kFull, v, off);
    exclusive += v;
    if (prefix_lanes) break;
    pred -= 32;
  }
  if (lane == 0)
    AtomicU64(status[tile]).store(kPrefix | static_cast<unsigned>(exclusive + count), cuda::memory_order_relaxed);
  return exclusive;
}

// Exclusive block-wide prefix sum of one int per thread; *total = the block's sum. Ends with a
// barrier, so `scratch` can be reused right after.
__device__ int block_exclusive_sum(int v, int* scratch /* kWarps + 1 */, int* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  int incl = v;
  for (int off = 1; off < 32; off <<= 1) {
    const int n = __shfl_up_sync(kFull, incl, off);
    if (lane >= off) incl += n;
  }
  if (lane == 31) scratch[warp] = incl;
  __syncthreads();
  if (warp == 0) {
    int w = lane < kWarps ? scratch[lane] : 0;
    int wi = w;
    for (int off = 1; off < 32; off <<= 1) {
      const int n = __shfl_up_sync(kFull, wi, off);
      if (lane >= off) wi += n;
    }
    if (lane < kWarps) scratch[lane] = wi - w;
    if (lane == 31) scratch[kWarps] = wi;
  }
  __syncthreads();
  const int out = scratch[warp] + incl - v;
  *total = scratch[kWarps];
  __syncthreads();
  return out;
}

// The image's kept anchors number `kept` > rows: keep the `rows` best (score key descending, then
// anchor order) and write them, in anchor order, to rows [0, rows). Kept anchor g is in output row g
// (g < rows) or overflow slot g - rows. One block, all threads.
__device__ void select_top_k(const Outputs& out, const Work& w, int b, int kept, int rows, int* scratch) {
  __shared__ int hist[256];
  __shared__ unsigned s_digit;
  __shared__ int s_above;
  const size_t row0 = static_cast<size_t>(b) * rows;
  const size_t ov0 = static_cast<size_t>(b) * static_cast<size_t>(w.overflow_per_image);
  auto score_at = [&](int g) {
    return g < rows ? __ldcg(out.scores + row0 + g) : __ldcg(w.ov_score + ov0 + (g - rows));
  };
  // Radix select, 8 bits at a time from the top: the key of the rows-th largest.
  unsigned prefix = 0, prefix_mask = 0;
  int remaining = rows;  // how many keys matching `prefix` are still to take
  for (int shift = 24; shift >= 0; shift -= 8) {
    hist[threadIdx.x] = 0;
    __syncthreads();
    for (int g = threadIdx.x; g < kept; g += kThreads) {
      const unsigned k = score_key(score_at(g));
      if ((k & prefix_mask) == prefix) atomicAdd(&hist[(k >> shift) & 255u], 1);
    }
    __syncthreads();
    // thread i holds digit 255 - i: the inclusive sum counts the keys with digit >= 255 - i
    const int c = hist[255 - threadIdx.x];
    int total;
    const int above = block_exclusive_sum(c, scratch, &total);  // keys with digit > 255 - i
    if (above < remaining && remaining <= above + c) {  // exactly one thread: remaining <= total
      s_digit = 255u - threadIdx.x;
      s_above = above;
    }
    __syncthreads();
    prefix |= s_digit << shift;
    prefix_mask |= 255u << shift;
    remaining -= s_above;
    __syncthreads();  // s_digit / s_above / hist are rewritten in the next pass
  }
  const unsigned kth = prefix;  // keys > kth are all kept; of the keys == kth, the first `remaining`
  // Compaction in anchor order, in place: kept anchor g moves to row dest(g) <= g. Chunk by chunk,
  // every thread reads its record, a barrier, then writes: a chunk's writes go to rows below the
  // chunk's end, which no later chunk reads.
  int kept_before = 0, ties_before = 0;
  for (int g0 = 0; g0 < kept; g0 += kThreads) {
    const int g = g0 + threadIdx.x;
    float4 box = make_float4(0.f, 0.f, 0.f, 0.f);
    float score = 0.f;
    int cls = 0;
    unsigned key = 0;
    if (g < kept) {
      if (g < rows) {
        box = __ldcg(out.boxes + row0 + g);
        score = __ldcg(out.scores + row0 + g);
        cls = __ldcg(out.classes + row0 + g);
      } else {
        box = __ldcg(w.ov_box + ov0 + (g - rows));
        score = __ldcg(w.ov_score + ov0 + (g - rows));
        cls = __ldcg(w.ov_cls + ov0 + (g - rows));
      }
      key = score_key(score);
    }
    const bool tie = g < kept && key == kth;
    int ties_chunk;
    const int tie_rank = ties_before + block_exclusive_sum(tie ? 1 : 0, scratch, &ties_chunk);
    const bool keep = g < kept && (key > kth || (tie && tie_rank < remaining));
    int kept_chunk;
    const int dest = kept_before + block_exclusive_sum(keep ? 1 : 0, scratch, &kept_chunk);
    // (block_exclusive_sum ended with a barrier: every read of this chunk is done)
    if (keep) {
      out.boxes[row0 + dest] = box;
      out.scores[row0 + dest] = score;
      out.classes[row0 + dest] = cls;
    }
    kept_before += kept_chunk;
    ties_before += ties_chunk;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) decode_kernel(const DecodeParams p, const Outputs out, const Work w) {
  __shared__ unsigned s_tile;
  __shared__ int s_warp_count[kWarps], s_warp_offset[kWarps], s_tile_offset;
  __shared__ int s_scratch[kWarps + 1];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int total = p.total_anchors();
  const int rows = p.max_detections;
  const int nc = p.num_classes, no = nc + 5;
  const float thr = p.score_threshold;
  unsigned my_tiles = 0;

  for (;;) {
    if (threadIdx.x == 0) s_tile = atomicAdd(w.ticket, 1u);
    __syncthreads();  // (A) s_tile visible; the previous tile's shared reads are all done
    const unsigned tile = s_tile;
    if (tile >= w.num_tiles) break;  // block-uniform
    ++my_tiles;
    const int b = static_cast<int>(tile / w.tiles_per_image);
    const int j = static_cast<int>(tile - static_cast<unsigned>(b) * w.tiles_per_image);
    const int t = j * kThreads + threadIdx.x;  // anchor index within the image
    const bool valid = t < total;

    // 1. where the anchor is, its objectness, and (candidates) its box channels
    int l = 0, a = 0, x = 0, y = 0, hw = 1;
    const T* base = nullptr;  // channel k of this anchor: base[k * hw]
    float obj = 0.f;
    if (valid) {
      while (l + 1 < p.num_levels && t >= p.cell_offset[l + 1]) ++l;
      hw = p.grid_h[l] * p.grid_w[l];
      const int local = t - p.cell_offset[l];
      a = local / hw;
      const int cell = local - a * hw;
      y = cell / p.grid_w[l];
      x = cell - y * p.grid_w[l];
      base = static_cast<const T*>(p.inputs[l]) +
             (static_cast<size_t>(b) * p.num_anchors + a) * static_cast<size_t>(no) * hw + cell;
      obj = load(base + 4 * static_cast<size_t>(hw));
    }
    const bool cand = valid && obj > thr;
    float sx = 0.f, sy = 0.f, sw = 0.f, sh = 0.f;
    if (cand) {
      sx = load(base);
      sy = load(base + hw);
      sw = load(base + 2 * static_cast<size_t>(hw));
      sh = load(base + 3 * static_cast<size_t>(hw));
    }

    // 2. best class of each candidate
    float best = __uint_as_float(0xFF800000u);  // -inf
    int best_c = 0;
    const unsigned cmask = __ballot_sync(kFull, cand);
    if (cmask && cooperative(__popc(cmask), nc)) {  // warp-uniform
      for (unsigned m = cmask; m; m &= m - 1) {
        const int src = __ffs(m) - 1;
        const T* cb = reinterpret_cast<const T*>(
            __shfl_sync(kFull, static_cast<unsigned long long>(reinterpret_cast<uintptr_t>(base)), src));
        const size_t chw = static_cast<size_t>(__shfl_sync(kFull, hw, src));
        float v_best = __uint_as_float(0xFF800000u);
        int v_c = INT_MAX;
#pragma unroll 4
        for (int c = lane; c < nc; c += 32) {
          const float v = load(cb + (5 + static_cast<size_t>(c)) * chw);
          if (v > v_best) {  // c increases: the first maximum of this lane's classes; NaN never wins
            v_best = v;
            v_c = c;
          }
        }
        for (int off = 16; off > 0; off >>= 1)
          take_better(__shfl_xor_sync(kFull, v_best, off), __shfl_xor_sync(kFull, v_c, off), v_best, v_c);
        if (lane == src) {
          best = v_best;
          best_c = v_c == INT_MAX ? 0 : v_c;  // every class NaN or -inf: class 0, as the CPU decode
        }
      }
    } else if (cand) {
#pragma unroll 8
      for (int c = 0; c < nc; ++c) {
        const float v = load(base + (5 + static_cast<size_t>(c)) * hw);
        if (v > best) {
          best = v;
          best_c = c;
        }
      }
    }
    const float score = p.score_mode == 0 ? obj * best : obj;
    const bool keep = cand && score > thr;

    // 3. rank within the tile, then the tile's offset in the image
    const unsigned kmask = __ballot_sync(kFull, keep);
    if (lane == 0) s_warp_count[warp] = __popc(kmask);
    __syncthreads();  // (B)
    if (warp == 0) {
      const int c = lane < kWarps ? s_warp_count[lane] : 0;
      int incl = c;
      for (int off = 1; off < 32; off <<= 1) {
        const int n = __shfl_up_sync(kFull, incl, off);
        if (lane >= off) incl += n;
      }
      if (lane < kWarps) s_warp_offset[lane] = incl - c;
      const int tile_count = __shfl_sync(kFull, incl, 31);
      const int before = look_back(w.status + static_cast<size_t>(b) * w.tiles_per_image, j, tile_count);
      if (lane == 0) s_tile_offset = before;
    }
    __syncthreads();  // (C) s_warp_offset, s_tile_offset visible

    // 4. write: output row or overflow slot
    if (keep) {
      const int g = s_tile_offset + s_warp_offset[warp] + __popc(kmask & ((1u << lane) - 1u));
      float box[4];
      make_box(p, l, a, x, y, sx, sy, sw, sh, box);
      const float4 b4 = make_float4(box[0], box[1], box[2], box[3]);
      if (g < rows) {
        const size_t r = static_cast<size_t>(b) * rows + g;
        out.boxes[r] = b4;
        out.scores[r] = score;
        out.classes[r] = best_c;
      } else {
        const size_t o = static_cast<size_t>(b) * static_cast<size_t>(w.overflow_per_image) + (g - rows);
        w.ov_box[o] = b4;
        w.ov_score[o] = score;
        w.ov_cls[o] = best_c;
      }
    }
    // the next (A) orders these shared reads before the next tile's shared writes
  }

  // Every tile done: publish this block's writes, wait for everyone's (grid-sync pattern).
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(w.done, my_tiles);
    while (cuda::atomic_ref<unsigned, cuda::thread_scope_device>(*w.done).load(cuda::memory_order_relaxed) <
           w.num_tiles)
      __nanosleep(64);
    __threadfence();
  }
  __syncthreads();

  // Finish. kept(b) = the last tile's inclusive prefix.
  auto kept_in = [&](int b) {
    const size_t last = static_cast<size_t>(b) * w.tiles_per_image + (w.tiles_per_image - 1);
    return static_cast<int>(AtomicU64(w.status[last]).load(cuda::memory_order_relaxed) & 0xFFFFFFFFull);
  };
  const int batch = p.batch;
  for (int b = blockIdx.x * kThreads + threadIdx.x; b < batch; b += gridDim.x * kThreads)
    out.num[b] = min(kept_in(b), rows);
  // zero rows: this block's slice [r0, r1) of the flattened [batch * rows] rows
  const long long all_rows = static_cast<long long>(batch) * rows;
  const long long per_block = (all_rows + gridDim.x - 1) / gridDim.x;
  const long long r0 = per_block * blockIdx.x, r1 = min(all_rows, r0 + per_block);
  for (long long img_first = r0 / rows * rows; img_first < r1; img_first += rows) {
    const int b = static_cast<int>(img_first / rows);
    const long long lo = max(r0, img_first + kept_in(b)), hi = min(r1, img_first + rows);
    for (long long r = lo + threadIdx.x; r < hi; r += kThreads) {
      out.boxes[r] = make_float4(0.f, 0.f, 0.f, 0.f);
      out.scores[r] = 0.f;
      out.classes[r] = 0;
    }
  }
  for (int b = blockIdx.x; b < batch; b += gridDim.x) {
    const int kept = kept_in(b);  // block-uniform
    if (kept > rows) select_top_k(out, w, b, kept, rows, s_scratch);
  }
}

// Blocks that can be resident at once on the current device (cached per device): more would only
// wait for a ticket. The first call per device loads the kernel (CUDA lazy loading). Every query's
// own result is checked: a failure is returned, nothing is cleared.
template <typename T>
cudaError_t resident_blocks(int* blocks) {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices];
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  const bool cacheable = dev >= 0 && dev < kMaxDevices;
  if (cacheable) {
    if (const int v = cache[dev].load(std::memory_order_relaxed)) {
      *blocks = v;
      return cudaSuccess;
    }
  }
  int sms = 0, per_sm = 0;
  err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (err == cudaSuccess) err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, decode_kernel<T>, kThreads, 0);
  if (err != cudaSuccess) return err;
  // (0 per SM would mean the kernel cannot run at all: the launch says why)
  const int v = std::max(1, sms) * std::max(1, per_sm);
  if (cacheable) cache[dev].store(v, std::memory_order_relaxed);
  *blocks = v;
  return cudaSuccess;
}

}  // namespace

size_t decode_workspace_size(int batch, int total_anchors, int max_detections) {
  if (batch <= 0 || total_anchors <= 0) return 0;
  const int rows = max_detections <= 0 || max_detections > total_anchors ? total_anchors : max_detections;
  return layout(batch, total_anchors, rows).total;
}

int decode_cuda(const DecodeParams& p, int32_t* num_detections, float* boxes, float* scores, int32_t* classes,
                void* workspace, cudaStream_t stream) {
  if (p.num_levels < 1 || p.num_levels > kMaxLevels) return static_cast<int>(cudaErrorInvalidValue);
  const int total = p.total_anchors();
  // not finalized: the kernel would divide by max_detections and index past the rows
  if (total < 1 || p.max_detections < 1 || p.max_detections > total || p.batch < 0)
    return static_cast<int>(cudaErrorInvalidValue);
  if (p.batch == 0) return 0;
  if (reinterpret_cast<uintptr_t>(boxes) % alignof(float4) != 0 ||
      reinterpret_cast<uintptr_t>(workspace) % alignof(float4) != 0)
    return static_cast<int>(cudaErrorMisalignedAddress);
  const Layout L = layout(p.batch, total, p.max_detections);
  if (static_cast<unsigned long long>(p.batch) * L.tiles_per_image > 0x7FFFFFFFull)
    return static_cast<int>(cudaErrorInvalidValue);
  char* ws = static_cast<char*>(workspace);
  Work w;
  w.ticket = reinterpret_cast<unsigned*>(ws);
  w.done = reinterpret_cast<unsigned*>(ws) + 1;
  w.status = reinterpret_cast<unsigned long long*>(ws + L.status);
  w.ov_box = reinterpret_cast<float4*>(ws + L.ov_box);
  w.ov_score = reinterpret_cast<float*>(ws + L.ov_score);
  w.ov_cls = reinterpret_cast<int32_t*>(ws + L.ov_cls);
  w.tiles_per_image = L.tiles_per_image;
  w.num_tiles = static_cast<unsigned>(p.batch) * static_cast<unsigned>(L.tiles_per_image);
  w.overflow_per_image = L.overflow_per_image;
  const Outputs out{num_detections, reinterpret_cast<float4*>(boxes), scores, classes};

  int resident = 0;
  cudaError_t err = p.fp16 ? resident_blocks<__half>(&resident) : resident_blocks<float>(&resident);
  if (err != cudaSuccess) return static_cast<int>(err);
  // ticket, done and every status word start at 0 (kInvalid)
  err = cudaMemsetAsync(workspace, 0, L.ov_box, stream);
  if (err != cudaSuccess) return static_cast<int>(err);
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(std::min(w.num_tiles, static_cast<unsigned>(resident)));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  // the launch's own status (cudaGetLastError would also return, and clear, errors of earlier calls)
  err = p.fp16 ? cudaLaunchKernelEx(&config, decode_kernel<__half>, p, out, w)
               : cudaLaunchKernelEx(&config, decode_kernel<float>, p, out, w);
  return static_cast<int>(err);
}

int decode_cuda_prepare(bool fp16) {
  int blocks = 0;
  return static_cast<int>(fp16 ? resident_blocks<__half>(&blocks) : resident_blocks<float>(&blocks));
}

}  // namespace yolo
}  // namespace trtdeploy

// The CUDA NMS (semantics in nms.h). Three launches on the caller's stream, one image per block:
//  1. sort: the candidates above the score threshold, by (score desc, index asc), with a bitonic sort
//     of 64-bit keys in shared memory; writes the sorted indices, the count, the sorted boxes
//     (corners in order, float32) and classes to the workspace;
//  2. mask: for every sorted pair i < j (64 x 64 tiles), bit j of row i = box i suppresses box j;
//  3. sweep: one warp per image walks the sorted candidates, the "removed" bits in registers, ORs the
//     mask row of every kept box, stops at max_detections, and writes the outputs (boxes and scores
//     copied from the inputs bit for bit, rows past the count zero).
// No allocation, no host synchronization, fixed grids: CUDA graph safe.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "nms.h"

namespace trtdeploy {
namespace nms {
namespace {

constexpr int kSortThreads = 512;
constexpr int kTile = 64;
constexpr uint64_t kInvalid = ~0ull;

struct Workspace {
  int32_t* order;   // [B, K] sorted candidate indices
  int32_t* count;   // [B]
  float4* boxes;    // [B, K] sorted boxes, corners in order
  int32_t* classes; // [B, K] sorted classes
  uint64_t* mask;   // [B, K, W]
};

__host__ __device__ inline size_t align256(size_t n) { return (n + 255) / 256 * 256; }

Workspace carve(void* ws, int batch, int k) {
  const size_t b = static_cast<size_t>(batch), kk = static_cast<size_t>(k < 1 ? 1 : k);
  char* p = static_cast<char*>(ws);
  Workspace w;
  w.order = reinterpret_cast<int32_t*>(p);
  p += align256(b * kk * 4);
  w.count = reinterpret_cast<int32_t*>(p);
  p += align256(b * 4);
  w.boxes = reinterpret_cast<float4*>(p);
  p += align256(b * kk * 16);
  w.classes = reinterpret_cast<int32_t*>(p);
  p += align256(b * kk * 4);
  w.mask = reinterpret_cast<uint64_t*>(p);
  return w;
}

__device__ __forceinline__ float load(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float load(const __half* p, size_t i) { return __half2float(p[i]); }

template <typename T>
__global__ void sort_kernel(NmsParams p, int padded, Workspace w) {
  extern __shared__ uint64_t keys[];
  __shared__ int count;
  const int b = blockIdx.x, k = p.num_candidates;
  const size_t base = static_cast<size_t>(b) * k;
  const T* scores = static_cast<const T*>(p.scores);
  if (threadIdx.x == 0) count = 0;
  for (int i = threadIdx.x; i < padded; i += blockDim.x) {
    uint64_t key = kInvalid;
    if (i < k) {
      const float s = load(scores, base + i);
      if (s > p.score_threshold) key = nms_sort_key(s, i);
    }
    keys[i] = key;
  }
  __syncthreads();
  for (int size = 2; size <= padded; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = threadIdx.x; i < padded; i += blockDim.x) {
        const int j = i ^ stride;
        if (j > i) {
          const uint64_t a = keys[i], c = keys[j];
          if ((a > c) == ((i & size) == 0)) {
            keys[i] = c;
            keys[j] = a;
          }
        }
      }
      __syncthreads();
    }
  }
  for (int i = threadIdx.x; i < padded; i += blockDim.x)
    if (keys[i] != kInvalid && (i + 1 == padded || keys[i + 1] == kInvalid)) count = i + 1;
  __syncthreads();
  const int n = count;
  const T* boxes = static_cast<const T*>(p.boxes);
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const int idx = static_cast<int>(static_cast<uint32_t>(keys[i]));
    const size_t c = (base + idx) * 4;
    const NmsBox box = nms_box(load(boxes, c), load(boxes, c + 1), load(boxes, c + 2), load(boxes, c + 3));
    w.order[base + i] = idx;
    w.boxes[base + i] = make_float4(box.x1, box.y1, box.x2, box.y2);
    w.classes[base + i] = p.classes[base + idx];
  }
  if (threadIdx.x == 0) w.count[b] = n;
}

__global__ void mask_kernel(NmsParams p, int words, Workspace w) {
  __shared__ NmsBox cols[kTile];
  __shared__ int32_t col_classes[kTile];
  const int b = blockIdx.z, rb = blockIdx.y, cb = blockIdx.x;
  const int n = w.count[b];
  if (cb < rb || rb * kTile >= n || cb * kTile >= n) return;
  const size_t base = static_cast<size_t>(b) * p.num_candidates;
  const int ncols = min(kTile, n - cb * kTile);
  if (threadIdx.x < ncols) {
    const float4 v = w.boxes[base + cb * kTile + threadIdx.x];
    cols[threadIdx.x] = NmsBox{v.x, v.y, v.z, v.w};
    col_classes[threadIdx.x] = w.classes[base + cb * kTile + threadIdx.x];
  }
  __syncthreads();
  const int i = rb * kTile + threadIdx.x;
  if (i >= n) return;
  const float4 v = w.boxes[base + i];
  const NmsBox box{v.x, v.y, v.z, v.w};
  const int32_t cls = w.classes[base + i];
  uint64_t bits = 0;
  for (int c = (cb == rb ? threadIdx.x + 1 : 0); c < ncols; ++c)
    if ((p.class_agnostic || col_classes[c] == cls) && nms_suppresses(box, cols[c], p.iou_threshold))
      bits |= 1ull << c;
  w.mask[(base + i) * words + cb] = bits;
}

template <typename T>
__global__ void sweep_kernel(NmsParams p, int words, Workspace w, int32_t* num, T* out_boxes, T* out_scores,
                             int32_t* out_classes) {
  __shared__ int kept[kMaxDetections];
  const int b = blockIdx.x, lane = threadIdx.x, d = p.max_detections;
  const int n = p.num_candidates > 0 ? w.count[b] : 0;
  const int used = (n + 63) / 64;  // mask words written for this image
  const size_t base = static_cast<size_t>(b) * p.num_candidates;
  uint64_t removed0 = 0, removed1 = 0;  // words lane and lane + 32 (K <= 4096: at most 64 words)
  int nk = 0;
  for (int i = 0; i < n && nk < d; ++i) {
    const int word = i >> 6;
    const uint64_t mine = word < 32 ? removed0 : removed1;
    const uint64_t bits = __shfl_sync(0xffffffffu, mine, word & 31);
    if ((bits >> (i & 63)) & 1ull) continue;
    if (lane == 0) kept[nk] = i;
    ++nk;
    const uint64_t* row = w.mask + (base + i) * words;
    if (lane >= word && lane < used) removed0 |= row[lane];
    if (lane + 32 >= word && lane + 32 < used) removed1 |= row[lane + 32];
  }
  __syncwarp();
  if (lane == 0) num[b] = nk;
  const T* boxes = static_cast<const T*>(p.boxes);
  const T* scores = static_cast<const T*>(p.scores);
  const T zero = T(0.f);
  for (int r = lane; r < d; r += 32) {
    const size_t o = static_cast<size_t>(b) * d + r;
    if (r < nk) {
      const size_t src = base + w.order[base + kept[r]];
      for (int c = 0; c < 4; ++c) out_boxes[o * 4 + c] = boxes[src * 4 + c];
      out_scores[o] = scores[src];
      out_classes[o] = p.classes[src];
    } else {
      for (int c = 0; c < 4; ++c) out_boxes[o * 4 + c] = zero;
      out_scores[o] = zero;
      out_classes[o] = 0;
    }
  }
}

int padded_size(int k) {
  int padded = 1;
  while (padded < k) padded <<= 1;
  return padded;
}

cudaLaunchConfig_t config(dim3 grid, int threads, size_t smem, cudaStream_t stream) {
  cudaLaunchConfig_t c = {};
  c.gridDim = grid;
  c.blockDim = dim3(threads);
  c.dynamicSmemBytes = smem;
  c.stream = stream;
  return c;
}

template <typename T>
int launch(const NmsParams& p, int32_t* num, void* boxes, void* scores, int32_t* classes, void* workspace,
           cudaStream_t stream) {
  // each launch's own status (cudaGetLastError would also return, and clear, errors of earlier calls)
  const int k = p.num_candidates, words = (k + 63) / 64;
  const Workspace w = carve(workspace, p.batch, k);
  cudaError_t err = cudaSuccess;
  if (k > 0) {
    const int padded = padded_size(k);
    cudaLaunchConfig_t c = config(dim3(p.batch), kSortThreads, padded * sizeof(uint64_t), stream);
    err = cudaLaunchKernelEx(&c, sort_kernel<T>, p, padded, w);
    if (err != cudaSuccess) return static_cast<int>(err);
    c = config(dim3(words, words, p.batch), kTile, 0, stream);
    err = cudaLaunchKernelEx(&c, mask_kernel, p, words, w);
    if (err != cudaSuccess) return static_cast<int>(err);
  }
  cudaLaunchConfig_t c = config(dim3(p.batch), 32, 0, stream);
  err = cudaLaunchKernelEx(&c, sweep_kernel<T>, p, words, w, num, static_cast<T*>(boxes), static_cast<T*>(scores),
                           classes);
  return static_cast<int>(err);
}

}  // namespace

int nms_cuda(const NmsParams& p, int32_t* num, void* boxes, void* scores, int32_t* classes, void* workspace,
             cudaStream_t stream) {
  if (check_params(p) != nullptr) return static_cast<int>(cudaErrorInvalidValue);
  if (p.batch == 0) return 0;
  if (!num || !boxes || !scores || !classes || (!workspace && p.num_candidates > 0))
    return static_cast<int>(cudaErrorInvalidValue);
  if (p.batch > 65535) return static_cast<int>(cudaErrorInvalidValue);  // the mask grid's z
  return p.fp16 ? launch<__half>(p, num, boxes, scores, classes, workspace, stream)
                : launch<float>(p, num, boxes, scores, classes, workspace, stream);
}

int nms_cuda_prepare() {
  cudaFuncAttributes a;
  cudaError_t e = cudaFuncGetAttributes(&a, sort_kernel<float>);
  if (e == cudaSuccess) e = cudaFuncGetAttributes(&a, sort_kernel<__half>);
  if (e == cudaSuccess) e = cudaFuncGetAttributes(&a, mask_kernel);
  if (e == cudaSuccess) e = cudaFuncGetAttributes(&a, sweep_kernel<float>);
  if (e == cudaSuccess) e = cudaFuncGetAttributes(&a, sweep_kernel<__half>);
  return static_cast<int>(e);
}

}  // namespace nms
}  // namespace trtdeploy

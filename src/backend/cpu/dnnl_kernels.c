/* dnnl_kernels.c - the oneDNN kernel candidates engines may pick (MatMul, Gemm, Conv, ConvTranspose in f32
 * and bf16). Without oneDNN (MIXRT_HAVE_DNNL undefined) the table is only its terminator, so
 * the candidate lists fall through to the reference kernels. */
#include "backend/cpu/kernels.h"

#ifdef MIXRT_HAVE_DNNL
#include "backend/cpu/dnnl_impl.h"

const struct mixrt_cpu_kernel mixrt_dnnl_kernels[] = {
    {"dnnl_matmul", "", "MatMul", mixrt_dnnl_matmul_supports, mixrt_dnnl_matmul_prepare, mixrt_dnnl_state_release,
     mixrt_dnnl_matmul_run},
    {"dnnl_gemm", "", "Gemm", mixrt_dnnl_gemm_supports, mixrt_dnnl_gemm_prepare, mixrt_dnnl_state_release,
     mixrt_dnnl_gemm_run},
    {"dnnl_conv", "", "Conv", mixrt_dnnl_conv_supports, mixrt_dnnl_conv_prepare, mixrt_dnnl_state_release,
     mixrt_dnnl_conv_run},
    /* gemm first (f32 only): the builder takes the first candidate untimed where shapes are
     * unknown (Mask R-CNN's mask head: its 2x2 stride-2 ConvTranspose 145 -> ~100 ms in f32) */
    {"dnnl_deconv_gemm", "", "ConvTranspose", mixrt_dnnl_deconv_gemm_supports, mixrt_dnnl_deconv_gemm_prepare,
     mixrt_dnnl_state_release, mixrt_dnnl_deconv_gemm_run},
    {"dnnl_deconv", "", "ConvTranspose", mixrt_dnnl_deconv_supports, mixrt_dnnl_deconv_prepare,
     mixrt_dnnl_state_release, mixrt_dnnl_deconv_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
#else
const struct mixrt_cpu_kernel mixrt_dnnl_kernels[] = {{NULL, NULL, NULL, NULL, NULL, NULL, NULL}};
#endif

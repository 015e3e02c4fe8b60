// Host-emulation build of ../batchnorm.cu (compiled as C++ with -DFASTCONV_CUDA_EMU, see cuda_emu.h).
#include "../batchnorm.cu"

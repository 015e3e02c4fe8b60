// Host-emulation build of ../avgpool2d.cu (compiled as C++ with -DFASTCONV_CUDA_EMU, see cuda_emu.h).
#include "../avgpool2d.cu"

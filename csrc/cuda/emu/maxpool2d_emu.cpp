// Host-emulation build of ../maxpool2d.cu (compiled as C++ with -DFASTCONV_CUDA_EMU, see cuda_emu.h).
#include "../maxpool2d.cu"

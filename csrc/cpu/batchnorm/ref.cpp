// Batch normalization without ISA flags (the scalar path): batchnorm.inl. The independent check
// is the float64 oracle fastconv.reference.batch_norm.
#include "../simd/portable.h"
#include "batchnorm.inl"

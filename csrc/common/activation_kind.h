// The elementwise activations with their own kernels besides ReLU, shared by the CPU kernels
// (csrc/cpu/activation.h), the CUDA kernels (csrc/cuda/activation.cu) and both bindings.
#pragma once
#include <stdexcept>
#include <string>

namespace fastconv {

enum class Activation : int { sigmoid, tanh, leaky_relu };

// The bindings' spelling (fastconv's activation names) -> Activation.
inline Activation activation_named(const std::string& name) {
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "tanh") return Activation::tanh;
  if (name == "leaky_relu") return Activation::leaky_relu;
  throw std::invalid_argument("activation must be 'sigmoid', 'tanh' or 'leaky_relu', got '" + name + "'");
}

}  // namespace fastconv

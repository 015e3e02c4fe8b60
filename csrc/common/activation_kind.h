// The elementwise activations with their own kernels besides ReLU, shared by the CPU kernels
// (csrc/cpu/eltwise/eltwise.h), the CUDA kernels (csrc/cuda/eltwise/activation.cu) and both bindings, and the
// epilogues the conv2d and dense kernels fuse after their bias.
#pragma once
#include <stdexcept>
#include <string>

namespace fastconv {

enum class Activation : int { sigmoid, tanh, leaky_relu };

// What a conv2d forward or dense kernel applies to each output after the bias, before it stores it.
enum class Epilogue : int { none, relu, sigmoid, tanh, leaky_relu };

// The Activation an epilogue other than none / relu applies.
inline Activation activation_of(Epilogue e) {
  return e == Epilogue::sigmoid ? Activation::sigmoid : e == Epilogue::tanh ? Activation::tanh : Activation::leaky_relu;
}

// The bindings' spelling (fastconv's activation names) -> Activation.
inline Activation activation_named(const std::string& name) {
  if (name == "sigmoid") return Activation::sigmoid;
  if (name == "tanh") return Activation::tanh;
  if (name == "leaky_relu") return Activation::leaky_relu;
  throw std::invalid_argument("activation must be 'sigmoid', 'tanh' or 'leaky_relu', got '" + name + "'");
}

// The bindings' spelling -> Epilogue ("none" for no activation).
inline Epilogue epilogue_named(const std::string& name) {
  if (name == "none") return Epilogue::none;
  if (name == "relu") return Epilogue::relu;
  if (name == "sigmoid") return Epilogue::sigmoid;
  if (name == "tanh") return Epilogue::tanh;
  if (name == "leaky_relu") return Epilogue::leaky_relu;
  throw std::invalid_argument("activation must be 'none', 'relu', 'sigmoid', 'tanh' or 'leaky_relu', got '" + name +
                              "'");
}

// The name of a conv2d forward pass with this epilogue in the kernel logs (FASTCONV_VERBOSE).
inline const char* conv2d_fwd_op_name(Epilogue e) {
  switch (e) {
    case Epilogue::none:
      return "conv2d_fwd";
    case Epilogue::relu:
      return "conv2d_fwd_relu";
    case Epilogue::sigmoid:
      return "conv2d_fwd_sigmoid";
    case Epilogue::tanh:
      return "conv2d_fwd_tanh";
    default:
      return "conv2d_fwd_leaky_relu";
  }
}

}  // namespace fastconv

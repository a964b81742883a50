// Activation checkpointing (recompute in backward; Chen et al. 2016, "Training Deep Nets with
// Sublinear Memory Cost"; torch.utils.checkpoint).
//
//   y = checkpoint(fn, {x, mask, ...})      same value as y = fn({x, mask, ...})
//
// Forward runs fn under NoGradGuard, so none of fn's intermediate tensors is kept by a graph: they
// are freed as soon as fn returns. y gets ONE node ("checkpoint") that keeps only the inputs and
// the state of the random generator before fn. Its backward
//   1. sets the generator back to that state (so dropout inside fn draws the same masks), runs fn
//      again with grad mode on over detached copies of the inputs, and puts the generator back where
//      it was (so the rest of the step sees the draws the plain forward would have left it at);
//   2. runs the engine (run_backward, re-entrantly: it keeps all its state in locals) from the
//      recomputed output with the incoming gradient; parameters that fn uses (leaves captured by fn,
//      not passed in `inputs`) accumulate their .grad there exactly as in the plain path;
//   3. returns the gradients of the detached input copies to the outer graph.
// So the live activations of a stack of checkpointed blocks are the blocks' inputs plus one block's
// internals at a time, for the price of a second forward of every block.
//
// Contract for fn: a pure function of `inputs`, the parameters it captures and the generator
// `gen` (the default generator when null); it must capture by value (or by pointer to objects that
// outlive backward) whatever it uses, because it runs again in backward. Single output: a Node gets
// one gradient, so several outputs would need several nodes and a shared recompute; our callers
// (encoder/decoder blocks) have one.
//
// Pass-through cases (fn is just called, nothing is saved): grad mode off, or no input requires
// grad (then there is no input gradient to deliver; fn runs with grad mode on so parameters still
// get their gradients). Inputs that do not require grad (masks, ids) are saved and passed again
// but get no gradient.
//
// Exactness: the node hands each input ONE gradient, fn's uses of it already summed (in the order
// the plain path would add them: the recomputed graph is the same graph). The plain path adds the
// same terms one by one into a single slot, so the two agree bit for bit when every use of an input
// is inside fn, or when it has at most two uses in all (a + b == b + a exactly); with more uses split
// between fn and the rest of the graph they can differ in the last bits (addition is not
// associative). The model stacks are built to agree exactly (models/encoder_decoder.cpp: the
// encoder memory reaches each decoder block through its own view node in the plain path too).
//
// Limits: an in-place change of an input between forward and backward is caught (the inputs are
// SavedTensors); one of a parameter fn captures is not, since the node does not know fn's
// parameters. With retain_graph the node recomputes again on the next backward, which is correct
// (the generator state is replayed each time).
#pragma once

#include <functional>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace knot {

using CheckpointFn = std::function<Tensor(const std::vector<Tensor>& inputs)>;

// y = fn(inputs), with fn's activations recomputed in backward instead of kept (see above).
// gen: the generator fn draws from (dropout); nullptr = the default generator.
Tensor checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs, Generator* gen = nullptr);

}  // namespace knot

// Whole-model folding: a training-form checkpoint (ml-mobileclip key layout, as in Apple's
// mobileclip_*.pt state dicts, or already reparameterized) → mclip's inference-form tensors.
#pragma once

#include "models/config.h"
#include "models/weights.h"
#include "tensor/tensor.h"

namespace mclip {

// Folds every block, checks every tensor's shape against `config`, and refuses tensors the
// architecture does not have (num_batches_tracked aside) with a message that names them.
TensorMap fold_checkpoint(const ModelConfig& config, const WeightSource& checkpoint);

}  // namespace mclip

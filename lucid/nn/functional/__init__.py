"""lucid.nn.functional: the functional form of every layer, and the losses."""

from lucid.nn.functional.activation import (  # noqa: F401
    elu,
    gelu,
    hardtanh,
    leaky_relu,
    leaky_relu_,
    log_softmax,
    mish,
    relu,
    relu6,
    relu_,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from lucid.nn.functional.attention import (  # noqa: F401
    normalize,
    one_hot,
    scaled_dot_product_attention,
)
from lucid.nn.functional.conv import (  # noqa: F401
    avg_pool2d,
    conv2d,
    conv_transpose2d,
    fold,
    max_pool2d,
    pad,
    unfold,
)
from lucid.nn.functional.dropout import dropout, dropout2d  # noqa: F401
from lucid.nn.functional.embedding import embedding  # noqa: F401
from lucid.nn.functional.linear import linear  # noqa: F401
from lucid.nn.functional.loss import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cosine_similarity,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    pairwise_distance,
    smooth_l1_loss,
)
from lucid.nn.functional.normalization import batch_norm, group_norm, layer_norm  # noqa: F401
from lucid.nn.functional.resize import adaptive_avg_pool2d, interpolate  # noqa: F401

"""lucid.nn.functional: the functional form of every layer, and the losses."""

from lucid.nn.functional.activation import (  # noqa: F401
    celu,
    elu,
    gelu,
    glu,
    gumbel_softmax,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    leaky_relu_,
    log_softmax,
    logsigmoid,
    mish,
    pixel_shuffle,
    pixel_unshuffle,
    prelu,
    relu,
    relu6,
    relu_,
    selu,
    sigmoid,
    silu,
    softmax,
    softplus,
    softsign,
    tanh,
    tanhshrink,
    threshold,
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
from lucid.nn.functional.embedding import embedding, embedding_bag  # noqa: F401
from lucid.nn.functional.linear import linear  # noqa: F401
from lucid.nn.functional.loss import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cosine_embedding_loss,
    cosine_similarity,
    cross_entropy,
    gaussian_nll_loss,
    huber_loss,
    kl_div,
    l1_loss,
    margin_ranking_loss,
    mse_loss,
    nll_loss,
    pairwise_distance,
    poisson_nll_loss,
    smooth_l1_loss,
    triplet_margin_loss,
)
from lucid.nn.functional.normalization import (  # noqa: F401
    batch_norm,
    group_norm,
    layer_norm,
    rms_norm,
)
from lucid.nn.functional.resize import (  # noqa: F401
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    interpolate,
)

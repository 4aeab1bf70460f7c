"""Layers. Each helper module adds its names here."""

from lucid.nn.modules.activation import (  # noqa: F401
    CELU,
    ELU,
    GELU,
    GLU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softmax2d,
    Softplus,
    Softsign,
    Tanh,
    Tanhshrink,
    Threshold,
)
from lucid.nn.modules.container import (  # noqa: F401
    ModuleDict,
    ModuleList,
    ParameterDict,
    ParameterList,
    Sequential,
)
from lucid.nn.modules.conv import Conv2d  # noqa: F401
from lucid.nn.modules.dropout import Dropout  # noqa: F401
from lucid.nn.modules.layers2 import (  # noqa: F401
    AdaptiveAvgPool2d,
    ConvTranspose2d,
    Dropout2d,
    GroupNorm,
    Unflatten,
    Upsample,
)
from lucid.nn.modules.layers3 import (  # noqa: F401
    AvgPool1d,
    Bilinear,
    ConstantPad2d,
    Conv1d,
    InstanceNorm2d,
    MaxPool1d,
    ZeroPad2d,
)
from lucid.nn.modules.layers4 import (  # noqa: F401
    AdaptiveAvgPool1d,
    AdaptiveMaxPool2d,
    PixelShuffle,
    PixelUnshuffle,
    RMSNorm,
)
from lucid.nn.modules.linear import Flatten, Identity, Linear  # noqa: F401
from lucid.nn.modules.loss import (  # noqa: F401
    BCELoss,
    BCEWithLogitsLoss,
    CosineEmbeddingLoss,
    CosineSimilarity,
    CrossEntropyLoss,
    GaussianNLLLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MarginRankingLoss,
    MSELoss,
    NLLLoss,
    PoissonNLLLoss,
    SmoothL1Loss,
    TripletMarginLoss,
)
from lucid.nn.modules.module import Module, Parameter
from lucid.nn.modules.normalization import BatchNorm1d, BatchNorm2d, LayerNorm  # noqa: F401
from lucid.nn.modules.pooling import AvgPool2d, MaxPool2d  # noqa: F401
from lucid.nn.modules.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell  # noqa: F401
from lucid.nn.modules.sparse import Embedding, EmbeddingBag  # noqa: F401
from lucid.nn.modules.transformer import (  # noqa: F401
    MultiheadAttention,
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

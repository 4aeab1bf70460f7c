"""lucid.utils.data against PyTorch's documented behaviour: datasets, samplers, collation, the
DataLoader in this process and with worker processes (order, seeding, errors, dead workers),
and a loader with workers feeding a compiled training step."""

from __future__ import annotations

import collections
import os
import random

import numpy as np
import pytest

import lucid
from lucid.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    get_worker_info,
    random_split,
)


def _tensors(n=10):
    x = lucid.tensor(np.arange(n * 3, dtype=np.float32).reshape(n, 3))
    y = lucid.tensor(np.arange(n, dtype=np.int64))
    return x, y


# ----------------------------------------------------------------------------- datasets


def test_tensor_dataset_rows_and_length():
    x, y = _tensors()
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[4]
    np.testing.assert_array_equal(xi.numpy(), [12, 13, 14])
    assert yi.item() == 4
    with pytest.raises(ValueError, match="Size mismatch between tensors"):
        TensorDataset(x, lucid.zeros(9))


def test_subset_concat_and_random_split():
    x, y = _tensors(10)
    ds = TensorDataset(x, y)
    sub = Subset(ds, [7, 2])
    assert len(sub) == 2 and sub[0][1].item() == 7
    cat = ConcatDataset([sub, ds])
    assert len(cat) == 12 and cat[2][1].item() == 0 and cat[-1][1].item() == 9
    with pytest.raises(IndexError):
        cat[12]
    a, b = random_split(ds, [7, 3], generator=lucid.Generator().manual_seed(0))
    got = sorted([a[i][1].item() for i in range(7)] + [b[i][1].item() for i in range(3)])
    assert got == list(range(10))
    # fractions: floors, the remainder handed out from the first split on
    parts = random_split(range(11), [0.5, 0.3, 0.2], generator=lucid.Generator().manual_seed(1))
    assert [len(p) for p in parts] == [6, 3, 2]
    again = random_split(range(11), [0.5, 0.3, 0.2], generator=lucid.Generator().manual_seed(1))
    assert [list(p) for p in parts] == [list(p) for p in again]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(ds, [5, 6])


def test_randperm_is_a_seeded_permutation():
    g = lucid.Generator().manual_seed(3)
    p = lucid.randperm(50, generator=g)
    assert p.dtype == np.int64 and sorted(p.tolist()) == list(range(50))
    assert p.tolist() == lucid.randperm(50, generator=lucid.Generator().manual_seed(3)).tolist()
    lucid.manual_seed(5)
    first = lucid.randperm(20).tolist()
    lucid.manual_seed(5)
    assert lucid.randperm(20).tolist() == first
    assert lucid.randperm(0).shape == (0,)
    with pytest.raises(lucid.LucidError, match="randperm"):
        lucid.randperm(-1)


# ----------------------------------------------------------------------------- samplers


def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    g = lucid.Generator().manual_seed(0)
    order = list(RandomSampler(range(20), generator=g))
    assert sorted(order) == list(range(20)) and order != list(range(20))
    drawn = list(RandomSampler(range(5), replacement=True, num_samples=40, generator=g))
    assert len(drawn) == 40 and set(drawn) <= set(range(5))
    longer = list(RandomSampler(range(4), num_samples=10, generator=g))
    assert len(longer) == 10 and collections.Counter(longer[:8]) == {i: 2 for i in range(4)}
    assert sorted(SubsetRandomSampler([3, 9, 4], generator=g)) == [3, 4, 9]
    assert list(BatchSampler(range(7), 3, drop_last=False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchSampler(range(7), 3, drop_last=True)) == 2
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(3), num_samples=0)


def test_weighted_sampler_follows_the_weights():
    g = lucid.Generator().manual_seed(2)
    counts = collections.Counter(WeightedRandomSampler([0.0, 1.0, 3.0], 4000, generator=g))
    assert counts[0] == 0 and 2.6 < counts[2] / counts[1] < 3.4
    once = list(WeightedRandomSampler([1.0, 0.0, 2.0, 5.0], 3, replacement=False, generator=g))
    assert sorted(once) == [0, 2, 3]
    with pytest.raises(ValueError):
        WeightedRandomSampler([1.0, 0.0], 2, replacement=False)


# ----------------------------------------------------------------------------- collation


def test_default_collate_follows_pytorch():
    t = default_collate([lucid.ones(2), lucid.zeros(2)])
    assert t.shape == (2, 2)
    assert default_collate([1, 2]).dtype == np.int64
    assert default_collate([1.0, 2.0]).dtype == np.float64
    assert default_collate([True, False]).dtype == np.bool_
    assert default_collate(["a", "b"]) == ["a", "b"]
    d = default_collate([{"x": np.ones(3, np.float32), "n": 1}, {"x": np.zeros(3, np.float32),
                                                                 "n": 2}])
    assert d["x"].shape == (2, 3) and d["x"].dtype == np.float32 and d["n"].tolist() == [1, 2]
    pairs = default_collate([(lucid.ones(1), 0), (lucid.zeros(1), 1)])
    assert isinstance(pairs, list) and pairs[0].shape == (2, 1)
    Point = collections.namedtuple("Point", "x y")
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(p, Point) and p.x.tolist() == [1, 3]
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object(), object()])


# ----------------------------------------------------------------------------- the loader


def test_loader_batches_in_order_and_lengths():
    x, y = _tensors(10)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    batches = list(loader)
    assert len(loader) == 3 and [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7],
                                                                     [8, 9]]
    np.testing.assert_array_equal(batches[0][0].numpy(), x.numpy()[:4])
    assert len(DataLoader(TensorDataset(x, y), batch_size=4, drop_last=True)) == 2
    single = list(DataLoader(TensorDataset(x, y), batch_size=None))
    assert len(single) == 10 and single[3][1].item() == 3


def test_shuffle_is_seeded_by_manual_seed_and_by_a_generator():
    ds = TensorDataset(*_tensors(16))

    def order(**kw):
        return [i for _, y in DataLoader(ds, batch_size=5, shuffle=True, **kw)
                for i in y.tolist()]

    lucid.manual_seed(7)
    a, a2 = order(), order()  # two epochs: two different orders
    lucid.manual_seed(7)
    assert order() == a and sorted(a) == list(range(16)) and a2 != a
    g1, g2 = lucid.Generator().manual_seed(1), lucid.Generator().manual_seed(1)
    assert order(generator=g1) == order(generator=g2)


def test_loader_argument_errors_follow_pytorch():
    ds = TensorDataset(*_tensors(4))
    with pytest.raises(ValueError, match="sampler option is mutually exclusive with shuffle"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_sampler=BatchSampler(range(4), 2, False), batch_size=2)
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(_Stream(4), shuffle=True)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        DataLoader(ds, persistent_workers=True)


class _Stream(IterableDataset):
    """0 .. n-1, sharded between loader workers by get_worker_info()."""

    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))

    def __len__(self):
        return self.n


class _Draws(Dataset):
    """Item i: (i, a lucid draw, a Python random draw, this worker's pid)."""

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return i, lucid.rand(1).item(), random.random(), os.getpid()


class _Fails(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            raise KeyError(f"no item {i}")
        return i


class _Dies(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 4:
            os._exit(3)
        return i


def test_iterable_dataset_single_process_and_sharded_across_workers():
    assert [b.tolist() for b in DataLoader(_Stream(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5],
                                                                         [6]]
    got = [i for b in DataLoader(_Stream(9), batch_size=2, num_workers=2) for i in b.tolist()]
    assert sorted(got) == list(range(9))


def test_workers_give_the_batches_of_one_process_in_order_and_seed_reproducibly():
    ds = TensorDataset(*_tensors(23))
    plain = [y.tolist() for _, y in DataLoader(ds, batch_size=4)]
    workers = [y.tolist() for _, y in DataLoader(ds, batch_size=4, num_workers=2)]
    assert workers == plain

    def draws():
        lucid.manual_seed(11)
        return [b for b in DataLoader(_Draws(), batch_size=3, num_workers=2)]

    first, second = draws(), draws()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a[1].numpy(), b[1].numpy())
        np.testing.assert_array_equal(a[2].numpy(), b[2].numpy())
    pids = {p for batch in first for p in batch[3].tolist()}
    assert len(pids) == 2 and os.getpid() not in pids
    # workers draw different numbers (each seeds with the base seed plus its id)
    assert first[0][1].tolist() != first[1][1].tolist()


def test_worker_init_fn_and_worker_info():
    seen = []

    def init(worker_id):
        info = get_worker_info()
        assert info.id == worker_id and info.num_workers == 2
        random.seed(100 + worker_id)

    loader = DataLoader(_Draws(), batch_size=2, num_workers=2, worker_init_fn=init)
    for batch in loader:
        seen.append(batch[2].tolist())
    random.seed(100)
    assert seen[0][0] == random.random()
    assert get_worker_info() is None


def test_a_worker_error_is_raised_with_its_traceback():
    with pytest.raises(KeyError, match=r"(?s)Caught KeyError in DataLoader worker process \d.*"
                                       r"no item 5"):
        list(DataLoader(_Fails(), batch_size=2, num_workers=2))


def test_a_dead_worker_is_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(s\) \d+.*exited "
                                           "unexpectedly"):
        list(DataLoader(_Dies(), batch_size=2, num_workers=2))


def test_persistent_workers_serve_several_epochs():
    ds = TensorDataset(*_tensors(9))
    loader = DataLoader(ds, batch_size=4, num_workers=2, persistent_workers=True)
    epochs = [[y.tolist() for _, y in loader] for _ in range(3)]
    assert epochs == [[[0, 1, 2, 3], [4, 5, 6, 7], [8]]] * 3
    workers = loader._workers_iter.workers
    assert all(w.is_alive() for w in workers)
    loader._workers_iter.shutdown()
    assert not any(w.is_alive() for w in workers)


def test_a_loader_with_workers_feeds_a_compiled_step():
    """Workers fork from a process whose compiled step has already run natively."""
    import lucid.nn as nn
    from tests.models import train_step

    lucid.manual_seed(0)
    x = lucid.randn(64, 5)
    y = (x.sum(1, keepdim=True) > 0).float()
    models = {k: nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1)) for k in "ec"}
    models["c"].load_state_dict(models["e"].state_dict())
    opts = {k: lucid.optim.SGD(m.parameters(), lr=0.1) for k, m in models.items()}
    eager = train_step(models["e"], opts["e"], nn.MSELoss())
    compiled = lucid.compile(train_step(models["c"], opts["c"], nn.MSELoss()), mode="sync")
    ds = TensorDataset(x, y)
    for _epoch in range(3):
        for (xb, yb), (xw, yw) in zip(DataLoader(ds, batch_size=16),
                                      DataLoader(ds, batch_size=16, num_workers=2), strict=True):
            np.testing.assert_array_equal(xb.numpy(), xw.numpy())
            le, lc = eager(xb, yb), compiled(xw, yw)
            np.testing.assert_allclose(lc.item(), le.item(), rtol=1e-5, atol=1e-7)

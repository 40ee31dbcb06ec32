import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

# Awkward sizes, as vLLM's kernel tests use: odd, prime, just past a power of two.
AWKWARD_BLOCK_COUNTS = [1, 3, 17, 37, 129]


@pytest.fixture
def rng(request):
    # Fresh data every run, but reproducible from the printed seed when a test fails.
    seed = int(os.environ.get("IMP_TEST_SEED", np.random.SeedSequence().entropy % (2**32)))
    print(f"seed={seed}")
    return np.random.default_rng(seed)

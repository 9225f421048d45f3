"""The engine agrees with a slow reference written straight from the thesis formulas."""

from __future__ import annotations

import pytest
from lrp_models import conv_bn_net, conv_net, inputs, relative_error
from lrp_reference import reference_lrp

from spray.lrp import (
    EPSILON,
    EPSILON_PLUS_FLAT,
    THESIS,
    AlphaBeta,
    Basic,
    Composite,
    Epsilon,
    Flat,
    WSquare,
    ZPlus,
    attribute,
)

RULES = [Basic(), Epsilon(0.1), AlphaBeta(2.0, -1.0), AlphaBeta(1.5, -0.5), ZPlus(), Flat(), WSquare()]
COMPOSITES = {
    "thesis": THESIS,
    "epsilon_plus_flat": EPSILON_PLUS_FLAT,
    "epsilon": EPSILON,
    "custom": Composite(conv=AlphaBeta(3.0, -2.0), dense=Epsilon(0.5), first=WSquare()),
}


def _check(model, x, target, composite):
    expected = reference_lrp(model, x, target, composite)
    relevance, _ = attribute(model, x, target, composite)
    assert expected.abs().max() > 0
    assert relative_error(relevance, expected) <= 1e-10


@pytest.mark.parametrize("rule", RULES, ids=repr)
def test_every_rule_matches_the_reference(rule):
    _check(conv_net(), inputs((3, 3, 16, 16)), 2, Composite.uniform(rule))


@pytest.mark.parametrize("name", list(COMPOSITES))
def test_composites_match_the_reference(name):
    _check(conv_net(seed=3), inputs((2, 3, 16, 16), seed=4), 4, COMPOSITES[name])


def test_alpha_beta_on_non_negative_and_signed_inputs_matches_the_reference():
    # The first conv sees signed pixels (four-conv path), later ones ReLU outputs (two-conv path).
    x = inputs((2, 3, 16, 16), seed=7)
    _check(conv_net(seed=5), x, 0, Composite.uniform(AlphaBeta()))
    _check(conv_net(seed=5), x.abs(), 0, Composite.uniform(AlphaBeta()))


@pytest.mark.parametrize("composite", [THESIS, Composite.uniform(Basic())], ids=["thesis", "lrp0"])
def test_batch_norm_folding_equals_the_rule_on_the_conv_bn_pair(composite):
    # The reference builds z_ij = x_i w_ij s_j of the unfolded conv + BN pair explicitly.
    _check(conv_bn_net(), inputs((2, 3, 8, 8)), 1, composite)

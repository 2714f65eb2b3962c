"""A third-party plugin: a buy-and-hold strategy, registered through an entry point."""

from decimal import Decimal

import attrs

from engine import Strategy, hookimpl, positive


@attrs.frozen
class BuyHoldConfig:
    quantity: Decimal = attrs.field(default=Decimal(1), validator=positive)


class BuyHold:
    def __init__(self, config: BuyHoldConfig) -> None:
        self.quantity = config.quantity
        self.bought = False

    def on_start(self, ctx):
        self.ctx = ctx

    def on_bar(self, bar):
        if not self.bought:
            self.ctx.buy(self.quantity)
            self.bought = True


@hookimpl
def engine_strategies():
    return [Strategy(name="tiny_buy_hold", factory=BuyHold, config_type=BuyHoldConfig)]

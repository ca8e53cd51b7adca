"""Trading fees of the paper broker, in exact integer arithmetic.

Money inside the broker is integer **li** (厘, 0.001 元): ETF prices have three decimals, so a
price x volume is always a whole number of li and no float ever enters the books. Fees are charged to
the 分 (10 li), rounded half up, and computed *per order, cumulatively*: after each fill the fee of
the order's whole traded amount so far is recomputed and the fill is charged the difference. So an
order's fees never depend on how it was split into fills, the commission minimum applies once per
order, and the cash frozen for a buy (estimated on the full amount) always covers what is charged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

#: Stamp duty on sells was halved from 0.1% to 0.05% on this day (MoF announcement 2023-08-27).
STAMP_DUTY_CUT = dt.date(2023, 8, 28)

LI_PER_YUAN = 1000


def round_to_fen(li: Decimal) -> int:
    """A fee in li, rounded half up to a whole 分 (a multiple of 10 li)."""
    return int((li / 10).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * 10


def yuan_to_li(value: float) -> int:
    """元 (float from the API) -> li, rounded to the nearest li."""
    return int((Decimal(repr(float(value))) * LI_PER_YUAN).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def li_to_yuan(li: int) -> float:
    return li / LI_PER_YUAN


@dataclass(frozen=True)
class FeeSchedule:
    """Fee rates (fractions of the traded amount) and the commission minimum (元 per order).

    Defaults: commission 0.025% with a 5 元 minimum (a common retail rate; set yours), transfer fee
    0.001% on SH and SZ stocks (both sides; none on BJ and on funds), stamp duty on stock sells only:
    0.1% before 2023-08-28, 0.05% from then on.
    """

    commission_rate: Decimal = Decimal("0.00025")
    commission_min: Decimal = Decimal("5")
    transfer_rate: Decimal = Decimal("0.00001")
    stamp_rate_before_cut: Decimal = Decimal("0.001")
    stamp_rate: Decimal = Decimal("0.0005")

    def commission(self, amount_li: int) -> int:
        if amount_li <= 0:
            return 0
        return max(round_to_fen(Decimal(amount_li) * self.commission_rate), int(self.commission_min * 1000))

    def transfer(self, amount_li: int, market: str, is_fund: bool) -> int:
        if amount_li <= 0 or is_fund or market not in ("SH", "SZ"):
            return 0
        return round_to_fen(Decimal(amount_li) * self.transfer_rate)

    def stamp(self, amount_li: int, is_sell: bool, is_fund: bool, day: dt.date) -> int:
        if amount_li <= 0 or not is_sell or is_fund:
            return 0
        rate = self.stamp_rate if day >= STAMP_DUTY_CUT else self.stamp_rate_before_cut
        return round_to_fen(Decimal(amount_li) * rate)

    def total(self, amount_li: int, *, is_sell: bool, market: str, is_fund: bool, day: dt.date) -> int:
        """All fees of an order that traded ``amount_li`` in total (li)."""
        return (
            self.commission(amount_li)
            + self.transfer(amount_li, market, is_fund)
            + self.stamp(amount_li, is_sell, is_fund, day)
        )

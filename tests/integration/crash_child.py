"""Child of the crash test: redeems and regenerates in a loop until SIGKILLed.

Prints ``done <op> <license> <detail>`` after each operation the ledger confirmed.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support import request_for

from issuer import Issuer
from verifier import LicenseError


def main() -> None:
    folder, counter = Path(sys.argv[1]), int(sys.argv[2])
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    ticks = [counter]

    def clock() -> dt.datetime:
        return start + dt.timedelta(days=32) * ticks[0]  # every op a month apart: regeneration allowed

    iss = Issuer(folder / "ledger", folder / "keys", clock=clock)
    ids = [v.license_id for v in iss.licenses()]
    rng = random.Random(counter)
    print("ready", flush=True)
    while True:
        ticks[0] += 1
        license_id = rng.choice(ids)
        try:
            if rng.random() < 0.6:
                key = iss.show(license_id).activation_key
                result = iss.redeem(request_for(key, f"srv{rng.randrange(3)}"), method="air-gapped")
                print(f"done activated {license_id} {result.activation_id}", flush=True)
            else:
                view = iss.regenerate(license_id)
                print(f"done regenerated {license_id} {view.record.generation}", flush=True)
        except LicenseError as err:
            print(f"refused {err.code}", flush=True)


if __name__ == "__main__":
    main()

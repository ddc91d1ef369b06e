"""Consumer groups across threads and processes sharing a store, with no broker.

``assignors`` (who gets which partition), ``offsets`` (the committed-offsets log),
``coordinator`` (membership, generations, rebalances, heartbeats, fencing) and ``admin`` (list,
describe with lag, reset offsets, delete).
"""

"""The pool gauges read the connection pool only when it exists: sampling must never create one. (Django's
`DatabaseWrapper.pool` property opens a pool on first access with the settings of that moment; when the metrics
sampled it at the end of a request that never used the database, a test worker opened a pool on the development
database before its test database was set up, and the whole worker ran against the development database.)"""

from django.db import connections

from paytrust import metrics


def test_sampling_the_pool_never_opens_one():
    connection = connections["default"]
    pools = type(connection)._connection_pools
    saved = dict(pools)
    pools.clear()
    try:
        metrics.db_pool_observed()
        assert connection.alias not in pools
    finally:
        pools.clear()
        pools.update(saved)

"""Zaqar 15 (Debian's python3-zaqar) as a WSGI application for gunicorn, for Missive's bench.

    gunicorn --pythonpath perf/zaqar --env MISSIVE_ZAQAR_CONFIG=<zaqar.conf> zaqar_wsgi:application

perf/lib/zaqar-service.ts writes the config and starts gunicorn; docs/benchmarks.md says how.

Zaqar's own WSGI entry point, zaqar/transport/wsgi/app.py, parses sys.argv[1:] with oslo.config
at import time. Under gunicorn sys.argv holds gunicorn's arguments, which oslo.config rejects,
and there is no other way to name a config file outside /etc/zaqar. So this module builds the
app the way app.py does (cfg.CONF, log.setup, bootstrap.Bootstrap(conf).transport.app) with
``--config-file`` taken from the environment, after three in-memory fixes (nothing under /usr is
changed):

1. The Debian package lacks the Redis store's Lua scripts (zaqar/storage/redis/scripts/*.lua,
   read by zaqar/storage/redis/scripting.py:_read_script): every message post and claim would
   answer 503. _read_script falls back to ./lua, scripts written from the contract of their
   callers (see their headers).

2. zaqar/storage/redis/messages.py:_list calls client.zrank(msgset, None) when messages are
   listed with include_claimed=true and no marker. redis-py 3 and later (Debian ships 4.3) raise
   DataError on a None argument where older ones sent the string 'None' (ZRANK answered nil and
   listing started at the head), so that listing answers 503. zrank(key, None) answers None
   again.

3. Nothing else: the websocket transport's Python 3.11 problem (asyncio.wait given bare
   coroutines) does not touch the WSGI transport measured here.

Load the app in each worker (gunicorn's default without --preload): no Redis or SQLite
connection is then shared across fork().
"""
import os

import redis
import redis.client
from oslo_config import cfg
from oslo_log import log

from zaqar import bootstrap
from zaqar.storage.redis import scripting

_LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lua')
_packaged_read_script = scripting._read_script


def _read_script(name):
    try:
        return _packaged_read_script(name)
    except OSError:
        with open(os.path.join(_LUA, name + '.lua')) as f:
            return f.read()


scripting._read_script = _read_script

_zrank = redis.Redis.zrank


def _zrank_none_is_head(self, name, value, *args, **kwargs):
    if value is None and not isinstance(self, redis.client.Pipeline):
        return None
    return _zrank(self, name, value, *args, **kwargs)


redis.Redis.zrank = _zrank_none_is_head

_config = os.environ.get('MISSIVE_ZAQAR_CONFIG', '')
if not os.path.isfile(_config):
    raise RuntimeError('zaqar_wsgi: MISSIVE_ZAQAR_CONFIG must name a zaqar.conf, got %r' % _config)

# As zaqar/transport/wsgi/app.py, with the config file named here instead of in sys.argv.
conf = cfg.CONF
log.register_options(conf)
conf(project='zaqar', prog='zaqar-queues', args=['--config-file', _config])
log.setup(conf, 'zaqar')
_boot = bootstrap.Bootstrap(conf)
conf.drivers.transport = 'wsgi'
application = _boot.transport.app

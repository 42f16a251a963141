"""The standard python-zaqarclient session (tests/interop/zaqarclient_session.py) with Keystone auth.

Usage: KS_URL=<keystone> KS_MEMBER_TOKEN=<token> KS_ADMIN_TOKEN=<token> zaqarclient_keystone.py <base-url> <api-version> <pool-uri>
The session's tenant client uses alice's Keystone token (member of project alpha), its admin
client carol's (admin of alpha), both through zaqarclient's `keystone` auth backend given a token
(`os_auth_token`, as `openstack --os-token` does): every request carries a real Keystone token and
no X-Project-ID, which Missive takes from the token. Tokens are issued by the caller: with a
password instead, zaqarclient logs in to Keystone again for every request.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))

import zaqarclient_session as session  # noqa: E402
from zaqarclient.queues import client as zclient  # noqa: E402

TOKENS = iter([os.environ["KS_MEMBER_TOKEN"], os.environ["KS_ADMIN_TOKEN"]])


class KeystoneClients:
    """Stands in for `zclient` in the session: its first client is alice's, its second carol's."""

    @staticmethod
    def Client(url, version, conf):
        options = {"os_auth_url": os.environ["KS_URL"] + "/v3", "os_auth_token": next(TOKENS)}
        return zclient.Client(url, version=version, conf={"auth_opts": {"backend": "keystone", "options": options}})


session.zclient = KeystoneClients
# The admin client proves its role with its own Keystone token: no operator token is added.
session.with_admin_token = lambda cli, token: cli

if __name__ == "__main__":
    base, version, pool_uri = sys.argv[1], sys.argv[2], sys.argv[3]
    sys.argv = [sys.argv[0], base, version, "unused-project", "unused-token", pool_uri]
    session.main()

"""The standard python-zaqarclient session (tests/interop/zaqarclient_session.py) with Keystone auth.

Usage: KS_URL=<keystone> KS_PASSWORD=<pw> zaqarclient_keystone.py <base-url> <api-version> <pool-uri>
The session's tenant client authenticates as alice (member of project alpha), its admin client
as carol (admin of alpha), both through Keystone (zaqarclient's `keystone` auth backend): every
request carries a real token and no X-Project-ID, which Missive takes from the token.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))

import zaqarclient_session as session  # noqa: E402
from zaqarclient.queues import client as zclient  # noqa: E402

USERS = iter([("alice", "alpha"), ("carol", "alpha")])


class KeystoneClients:
    """Stands in for `zclient` in the session: its first client is alice's, its second carol's."""

    @staticmethod
    def Client(url, version, conf):
        user, project = next(USERS)
        options = {
            "os_auth_url": os.environ["KS_URL"] + "/v3",
            "os_username": user,
            "os_password": os.environ["KS_PASSWORD"],
            "os_project_name": project,
            "os_user_domain_name": "Default",
            "os_project_domain_name": "Default",
        }
        return zclient.Client(url, version=version, conf={"auth_opts": {"backend": "keystone", "options": options}})


session.zclient = KeystoneClients
# The admin client proves its role with its own Keystone token: no operator token is added.
session.with_admin_token = lambda cli, token: cli

if __name__ == "__main__":
    base, version, pool_uri = sys.argv[1], sys.argv[2], sys.argv[3]
    sys.argv = [sys.argv[0], base, version, "unused-project", "unused-token", pool_uri]
    session.main()

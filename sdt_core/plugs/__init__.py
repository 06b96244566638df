"""The plug framework: the hooks a plug implements, their discovery, settings, ClientPlug, plans.

`hookspecs` (the hooks), `discovery` (entry points, one registry), `settings` and
`setting_types` (declared once, validated), `clientplug` (a plug as a Client), `attached`
(a cluster sdt did not start), `plan` (what a start would create), `exposure` (the rule for
listening beyond loopback), `imports` (plugs by import path), `versions` (what must match on
workers), `template` (`sdt new-plug`).
"""

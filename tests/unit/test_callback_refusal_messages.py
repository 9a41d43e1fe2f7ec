"""Every refusal code dialer/desk_callbacks.py (and the desk's own checks) can raise has a
message in web/callbacks.py: a code without one would be a 500 instead of the refusal."""

import ast
import inspect

from asterisk_cube.dialer import desk_callbacks as svc
from asterisk_cube.web import callbacks as web


def raised_codes(module) -> set[str]:
    codes = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "CallbackRefused"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
        ):
            codes.add(node.args[1].value)
    return codes


def test_every_refusal_code_has_a_message():
    codes = raised_codes(svc) | raised_codes(web)
    assert len(codes) == len(web.MESSAGES) == 13
    assert codes == set(web.MESSAGES)

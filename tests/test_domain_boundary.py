"""The domain owns its state's shape: the shell reads and writes states only through the
domain's functions, and the domain imports no framework.

**The shell** is every module of ``agents/`` outside ``agents/domain/`` and every module
of ``streams/``. A customer's or a touchpoint's state is a dict whose keys (``"c"``,
``"vo"``, ``"s"``, ``"F"``, ``JOURNEYS`` …) are the domain's business: when the shell
subscripts it, a change of shape in the domain breaks the shell silently. So the scan
flags, in the shell, every

* ``x["k"]``, ``x.get("k")``, ``x.pop("k")`` and ``x.setdefault("k")`` with a
  string-literal key, and ``"k" in x`` with an identifier-like one (``"://" in url`` is
  a substring test, not a key);
* ``x[K]``, ``x.get(K)``, … with an UPPER_CASE constant imported from ``agents.domain``
  (``state[JOURNEYS]``), unless ``x`` is a module-level name of the file (a shell dict
  keyed by a domain constant, such as ``ALERT_TOPICS[DROP_OFF]``). Membership tests
  with a domain constant (``DROPPED in change.closed``) are not flagged: statuses and
  kinds are compared that way.

**The narrow rule for what is not a state.** A key read is allowed when its base (with
nested subscripts stripped: ``doc["a"]["b"]`` counts as ``doc``) is spelled exactly as one
of :data:`DOCUMENTS`: the names under which the shell holds public JSON documents whose
shape is a contract of its own (an event or an alert, defined in ``schemas/``; an HTTP
body; the environment; client settings), never a state. And the modules in
:data:`RENDERERS` only format a document they are handed (alerts read from Kafka, the
report's JSON); they may read it by key, and the scan checks they import neither tables
nor any domain module but the timestamp format, so no state can reach them.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOMAIN = REPO / "agents" / "domain"
SHELL = sorted([p for p in (REPO / "agents").glob("*.py")] + list((REPO / "streams").rglob("*.py")))

DOCUMENTS = {
    "event": "a touchpoint event (schemas/touchpoint-event.v1.schema.json), valid or not",
    "alert": "an alert (schemas/*-alert.v1.schema.json)",
    "out.value": "an alert the processor returned",
    "body": "an HTTP JSON body this worker answers",
    "answer": "an HTTP JSON body another worker answered",
    "request.query": "an HTTP request's query",
    "request.headers": "an HTTP request's headers",
    "os.environ": "the environment",
    "options": "Kafka client settings",
}
RENDERERS = {
    "streams/alert_view.py": "renders alerts and dead letters read from Kafka",
    "streams/offline/report_render.py": "renders the report document (agents.domain.report)",
}
RENDERER_MAY_IMPORT = ("agents.domain.timestamps", "streams.dead_letters")
KEY_METHODS = ("get", "pop", "setdefault")
FRAMEWORKS = ("faust", "mode", "aiokafka", "kafka", "confluent_kafka", "streams")


def _domain_names(tree: ast.Module) -> set[str]:
    """Local names imported from ``agents.domain``."""
    return {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("agents.domain") for a in node.names}


def _module_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _base(node: ast.expr) -> str:
    while isinstance(node, ast.Subscript):
        node = node.value
    return ast.unparse(node)


def key_reads(source: str) -> list[str]:
    """Every key read or write in ``source`` that the rule above does not allow."""
    tree = ast.parse(source)
    domain, module = _domain_names(tree), _module_names(tree)
    found = []

    def check(line: int, base: ast.expr, key: ast.expr, shown: str, membership: bool = False
              ) -> None:
        literal = isinstance(key, ast.Constant) and isinstance(key.value, str) \
            and (not membership or key.value.isidentifier())
        constant = not membership and isinstance(key, ast.Name) and key.id in domain \
            and key.id.isupper() and not (isinstance(base, ast.Name) and base.id in module)
        if (literal or constant) and _base(base) not in DOCUMENTS:
            found.append(f"line {line}: {shown}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript):
            check(node.lineno, node.value, node.slice, ast.unparse(node))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in KEY_METHODS and node.args:
            check(node.lineno, node.func.value, node.args[0], ast.unparse(node))
        elif isinstance(node, ast.Compare) and len(node.ops) == 1 \
                and isinstance(node.ops[0], ast.In | ast.NotIn):
            check(node.lineno, node.comparators[0], node.left, ast.unparse(node), True)
    return found


def test_no_shell_module_reads_a_state_by_key() -> None:
    offenders = {}
    for path in SHELL:
        rel = path.relative_to(REPO).as_posix()
        if rel not in RENDERERS and (found := key_reads(path.read_text())):
            offenders[rel] = found
    assert offenders == {}, ("read the state through a function of the domain module that "
                             "owns its shape (agents/domain/), not by key")


def test_renderers_are_handed_documents_and_can_reach_no_state() -> None:
    for rel in RENDERERS:
        tree = ast.parse((REPO / rel).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [f"{node.module}.{a.name}" if node.module in ("agents", "streams")
                     else node.module or "" for a in node.names]
                for name in modules:
                    if name.startswith(("agents", "streams")):
                        assert name in RENDERER_MAY_IMPORT, f"{rel} imports {name}"


def test_every_allowed_document_name_is_still_used() -> None:
    """An exemption nobody needs any more is a loophole: drop it."""
    used = set()
    for path in SHELL:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript):
                used.add(_base(node.value))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                used.add(_base(node.func.value))
    assert set(DOCUMENTS) <= used, set(DOCUMENTS) - used
    assert all((REPO / rel).is_file() for rel in RENDERERS)


def test_the_scan_finds_what_it_looks_for() -> None:
    assert key_reads('x = st["s"]\n') == ["line 1: st['s']"]
    assert key_reads('v = c.get("vo")\n') == ["line 1: c.get('vo')"]
    assert key_reads('done.state["c"] = 1\n') == ["line 1: done.state['c']"]
    assert key_reads('ok = "vo" in state\n') == ["line 1: 'vo' in state"]
    assert key_reads("from agents.domain.journeys import KEY\nj = state.pop(KEY, None)\n") \
        == ["line 2: state.pop(KEY, None)"]
    # documents, shell dicts keyed by a domain constant, and positions are not state keys
    assert key_reads('t = event["touchpoint"]\nk = alert["kind"]["x"]\n'
                     'q = request.query.get("scope")\n') == []
    assert key_reads("from agents.domain.drop_off import KIND\nTOPICS = {}\nt = TOPICS[KIND]\n"
                     ) == []
    assert key_reads("a = c[0]\nb = row[i]\nu = '://' in h\nv: list[Output] = []\n") == []
    assert key_reads("from agents.domain.journeys import DROPPED\nx = DROPPED in closed\n"
                     ) == []


def test_the_domain_imports_no_framework_and_not_the_shell() -> None:
    """``agents/domain`` is plain Python: no Faust, no Kafka client, no ``streams``."""
    offenders = []
    for path in sorted(DOMAIN.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level \
                else []
            offenders += [f"{path.name}: {n}" for n in names
                          if n.split(".")[0] in FRAMEWORKS or (n.startswith("agents.")
                          and not n.startswith("agents.domain"))]
    assert offenders == []

"""Allow ``python -m agentundo``."""

from __future__ import annotations

from agentundo.cli.main import main

raise SystemExit(main())

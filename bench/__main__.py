"""``python -m bench [name ...]``: run every benchmark (or the named ones)."""

import importlib
import pkgutil
import sys

import bench


def main(names: list[str]) -> None:
    modules = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )
    for name in names or modules:
        module = name if name.startswith("bench_") else f"bench_{name}"
        if module not in modules:
            sys.exit(f"unknown benchmark {name!r}; available: {', '.join(modules)}")
        print(f"== {module}")
        importlib.import_module(f"bench.{module}").main()


if __name__ == "__main__":
    main(sys.argv[1:])

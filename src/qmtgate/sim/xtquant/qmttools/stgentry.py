"""Strategy entry point (not simulated)."""


def run_file(user_script, param={}):
    raise NotImplementedError(
        "qmttools strategies run inside QMT's strategy engine, which the qmtgate simulator does not have"
    )

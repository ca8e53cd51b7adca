"""xtquant.xttools: a helper for QMT's PySide2 panels."""


def init_pyside2_path():
    """Point Qt at PySide2's platform plugins, as the real helper does; (False, error) without it."""
    try:
        import os

        import PySide2  # type: ignore[import-not-found]

        dirname = os.path.dirname(PySide2.__file__)
        os.environ["QT_QPA_PLATFORM_PLUGIN_PATH"] = os.path.join(dirname, "plugins", "platforms")
        return True, None
    except Exception as e:
        return False, e

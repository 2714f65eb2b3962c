raise ImportError("engine_plugin_broken needs a library that is not installed")

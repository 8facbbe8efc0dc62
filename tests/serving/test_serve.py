import socket

import pytest

from medsyn.errors import ConfigError
from medsyn.serving.serve import ServeConfig, serve, serve_command


def test_a_port_in_use_is_one_line_before_any_work():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}.*another --port"):
            serve(ServeConfig(port=port, model="/no/such/model"))  # refused before the model is looked at


def test_the_engine_command_carries_the_kv_cache_sizes(tmp_path):
    cmd = serve_command(ServeConfig(port=8123), tmp_path)
    assert "--continuous-batching" in cmd and cmd[cmd.index("--port") + 1] == "8123"
    assert cmd[cmd.index("--cb-num-blocks") + 1] == "128" and cmd[cmd.index("--cb-max-batch-tokens") + 1] == "1024"

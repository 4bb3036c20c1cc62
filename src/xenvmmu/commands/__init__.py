"""One module per `xenvmmu` subcommand; ``xenvmmu.cli`` only dispatches."""

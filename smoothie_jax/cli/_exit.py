"""The exit codes of `smoothie-jax`, the same for every command.

0 success; 1 bad data or a failed run (the message on stderr says what); 2 bad usage
(argparse's own code); 130 interrupted by Ctrl-C (128 + SIGINT, what shells report).
"""

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130

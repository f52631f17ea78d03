#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import sys

from config.environment import load_environment


def main():
    load_environment()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()

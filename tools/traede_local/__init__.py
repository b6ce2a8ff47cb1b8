"""The local emulation: the template reader, the local stack, Lambda/SQS emulation, the Traede sandbox, the
receiving system, fault injection and DynamoDB Local. Its entry point is `traede-local` (cli.py); the tests
and the benchmark use it too. Needs the local extra: pip install 'traede-export[local]'."""

"""The local emulation: the template reader, the local stack, Lambda/SQS emulation, the Traede sandbox, the
receiving system, fault injection and DynamoDB Local. Used by `traede-export run-local` and the tests."""

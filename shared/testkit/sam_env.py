"""What `sam local` gives each function's container, worked out by SAM CLI's own code.

Usage: sam_env.py TEMPLATE ENV_JSON ENDPOINT

For every function of TEMPLATE, resolves its environment as `sam local start-api --env-vars
ENV_JSON` would (samcli's LocalLambdaRunner._make_env_vars, then EnvironmentVariables.resolve),
without Docker, and fails unless AWS_ENDPOINT_URL is ENDPOINT and no value is left as an
unresolved logical id (what SAM makes of `!Ref Table`). tests/sam_local.rs checks env.json
against the template; this checks that SAM reads both the same way. It uses samcli internals,
hence the pinned aws-sam-cli in scripts/test.
"""

import json
import sys

from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider


def resolved(template, env_json):
    stacks, _ = SamLocalStackProvider.get_stacks(template)
    # Only the attributes _make_env_vars reads: the runner's other parts start Docker.
    runner = LocalLambdaRunner.__new__(LocalLambdaRunner)
    with open(env_json) as f:
        runner.env_vars_values = json.load(f)
    runner.aws_profile = runner.aws_region = runner.debug_context = None
    runner._boto3_session_creds = runner._boto3_region = None
    for function in SamFunctionProvider(stacks).get_all():
        yield function.name, runner._make_env_vars(function).resolve()


def main(template, env_json, endpoint):
    problems, count = [], 0
    for name, env in resolved(template, env_json):
        count += 1
        if env.get("AWS_ENDPOINT_URL") != endpoint:
            problems.append(f"{name}: AWS_ENDPOINT_URL={env.get('AWS_ENDPOINT_URL')!r}")
        for var, value in env.items():
            if value.endswith(("Table", "Policy", "Uploads")):
                problems.append(f"{name}: {var}={value!r}, a logical id")
    if problems or count == 0:
        sys.exit("sam local environment:\n  " + "\n  ".join(problems or ["no functions"]))
    print(f"sam local: {count} functions get {endpoint} and real names from {env_json}")


if __name__ == "__main__":
    main(*sys.argv[1:])

"""Each function's IAM policies, as `infra/template.yaml` deploys them.

The template is translated with SAM's own translator (the library `sam
deploy` runs), so the policies SAM adds are here as AWS would see them: the
dead-letter queue's `sqs:SendMessage`, the managed policies it attaches
(`AWSLambdaBasicExecutionRole`, `AWSXrayWriteOnlyAccess`), and the inline
`Policies` statements. Then the intrinsic functions are resolved against the
emulator's resources: what CloudFormation would put there on deploy.

Functions are named by their `CodeUri` folder (`../target/lambda/scan-gate/`
is `scan-gate`), which is the binary's name.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# `SHIPGATE_TEMPLATE` points at another copy (the statement-removal check uses it).
TEMPLATE = Path(os.environ.get("SHIPGATE_TEMPLATE") or Path(__file__).resolve().parents[2] / "infra" / "template.yaml")

# The AWS managed policies the template names by name (SAM looks these up
# with iam:ListPolicies on deploy).
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSLambdaVPCAccessExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
}


class UnresolvedReference(Exception):
    """The template refers to a resource the emulator was not told about."""


class _ManagedPolicies:
    def load(self) -> dict[str, str]:
        return dict(MANAGED_POLICIES)


def function_identities(
    resources: dict[str, dict[str, str]],
    parameters: dict[str, str],
    account: str,
    region: str,
    template: Path = TEMPLATE,
) -> dict[str, dict[str, Any]]:
    """`{function: {...}}`, each function as the template deploys it: its
    role's `policies` and `managedPolicyArns`, and its `environment`
    (variables, resolved), `timeout`, `memorySize` and
    `reservedConcurrency` (SAM's Globals merged in; None when unset).

    `resources` maps a logical id to its attributes: `Ref` and `Arn` (and any
    other attribute a `GetAtt` names). `parameters` overrides the template's
    parameter defaults, as `sam deploy --parameter-overrides` does.
    """
    translated, names, resolver = _translate(template, resources, parameters, account, region)
    out: dict[str, dict[str, Any]] = {}
    for logical_id, name in names.items():
        function = translated["Resources"][logical_id]["Properties"]
        role_id = function["Role"]["Fn::GetAtt"][0]
        role = translated["Resources"][role_id]["Properties"]
        policies = [resolver.resolve(p["PolicyDocument"]) for p in role.get("Policies", [])]
        managed = [m for m in resolver.resolve(role.get("ManagedPolicyArns", [])) if m is not _NO_VALUE]
        variables = resolver.resolve(function.get("Environment", {}).get("Variables", {}))
        out[name] = {
            "role": role_id,
            "policies": policies,
            "managedPolicyArns": sorted(set(managed)),
            "environment": {k: str(v) for k, v in variables.items()},
            "timeout": _number(resolver.resolve(function.get("Timeout"))),
            "memorySize": _number(resolver.resolve(function.get("MemorySize"))),
            "reservedConcurrency": _number(resolver.resolve(function.get("ReservedConcurrentExecutions"))),
            "schedules": _schedules(translated, logical_id, resolver),
            "rules": _rules(translated, logical_id, resolver),
        }
    return out


def _invoking(
    translated: dict[str, Any], function_id: str, resolver: _Resolver, kind: str
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(event name, properties, target) of each resource of `kind` (a rule,
    a schedule) with a target that invokes `function_id`, named as the
    function's event (SAM names the resource `<function><event>`)."""
    function_arn = resolver.resolve({"Fn::GetAtt": [function_id, "Arn"]})
    for logical_id, resource in translated["Resources"].items():
        if resource.get("Type") != kind:
            continue
        properties = resource["Properties"]
        targets = properties.get("Targets") or [properties.get("Target", {})]
        for target in targets:
            if resolver.resolve(target.get("Arn")) == function_arn:
                yield logical_id.removeprefix(function_id), properties, target


def _rules(translated: dict[str, Any], function_id: str, resolver: _Resolver) -> dict[str, Any]:
    """The EventBridge rules that target `function_id`: their bus (`default`
    when the template names none) and event pattern, resolved."""
    return {
        name: {
            "bus": resolver.resolve(properties.get("EventBusName", "default")),
            "pattern": resolver.resolve(properties.get("EventPattern")),
        }
        for name, properties, _ in _invoking(translated, function_id, resolver, "AWS::Events::Rule")
    }


def _schedules(translated: dict[str, Any], function_id: str, resolver: _Resolver) -> dict[str, Any]:
    """The EventBridge Scheduler schedules that invoke `function_id`: their
    expression and the `Input` they send (context attributes such as
    `<aws.scheduler.scheduled-time>` left for Scheduler to fill). Only what a
    test fires: the role and dead-letter queue are the emulator's business."""
    return {
        name: {
            "expression": resolver.resolve(properties.get("ScheduleExpression")),
            "input": resolver.resolve(target.get("Input")),
        }
        for name, properties, target in _invoking(translated, function_id, resolver, "AWS::Scheduler::Schedule")
    }


def _number(value: Any) -> int | None:
    return None if value is None or value is _NO_VALUE else int(value)


def translate_template(
    template: Path,
    parameters: dict[str, Any],
    account: str,
    region: str,
    attributes: Callable[[str, str], dict[str, str]],
) -> tuple[dict[str, Any], Callable[[Any], Any]]:
    """The template as SAM translates it, and a resolver for its intrinsic
    functions that asks `attributes(logical_id, type)` what a resource's
    `Ref` and `GetAtt`s give (the IAM lint's stand-ins for deployed ARNs)."""
    document = yaml_parse(template.read_text())
    values = {**_defaults(document), **parameters}
    translated, _ = _transform(document, values, account, region)
    resources = {
        logical_id: attributes(logical_id, resource.get("Type", ""))
        for logical_id, resource in translated.get("Resources", {}).items()
    }
    resolver = _Resolver(translated, resources, values, _pseudo(account, region))
    return translated, resolver.resolve


def _pseudo(account: str, region: str) -> dict[str, str]:
    return {"AWS::Region": region, "AWS::AccountId": account, "AWS::Partition": "aws"}


def _transform(
    document: dict[str, Any], values: dict[str, Any], account: str, region: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """SAM's translation of `document`, and each function's binary name by
    logical id (`CodeUri` ../target/lambda/scan-gate/ is `scan-gate`)."""
    names: dict[str, str] = {}
    for logical_id, resource in document.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        code_uri = str(resource["Properties"].get("CodeUri", ""))
        name = code_uri.rstrip("/").split("/")[-1]
        names[logical_id] = name
        # The translator wants an S3 location; the path only names the binary.
        resource["Properties"]["CodeUri"] = f"s3://local/{name}"
    # The translator reads the region from the environment for its pseudo parameters.
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    translated = transform(copy.deepcopy(document), {**values, **_pseudo(account, region)}, _ManagedPolicies())
    return translated, names


def _translate(
    template: Path, resources: dict[str, dict[str, str]], parameters: dict[str, str], account: str, region: str
) -> tuple[dict[str, Any], dict[str, str], _Resolver]:
    document = yaml_parse(template.read_text())
    values = {**_defaults(document), **parameters}
    translated, names = _transform(document, values, account, region)
    return translated, names, _Resolver(translated, resources, values, _pseudo(account, region))


def _defaults(document: dict[str, Any]) -> dict[str, Any]:
    defaults = {}
    for name, spec in document.get("Parameters", {}).items():
        if "Default" in spec:
            default = spec["Default"]
            if spec.get("Type") == "CommaDelimitedList" and isinstance(default, str):
                default = [] if default == "" else default.split(",")
            defaults[name] = default
    return defaults


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NO_VALUE = _NoValue()


class _Resolver:
    """Resolves the intrinsic functions policies use, as CloudFormation does."""

    def __init__(
        self,
        template: dict[str, Any],
        resources: dict[str, dict[str, str]],
        parameters: dict[str, Any],
        pseudo: dict[str, str],
    ) -> None:
        self.template = template
        self.resources = resources
        self.parameters = parameters
        self.pseudo = pseudo

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            handler = {
                "Ref": self._ref,
                "Fn::GetAtt": self._get_att,
                "Fn::Sub": self._sub,
                "Fn::Join": self._join,
                "Fn::If": self._if,
                "Fn::Select": self._select,
                "Fn::Split": self._split,
            }.get(key)
            if handler:
                return handler(arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self._attribute(name, "Ref")

    def _attribute(self, logical_id: str, attribute: str) -> str:
        known = self.resources.get(logical_id)
        if known is None or attribute not in known:
            raise UnresolvedReference(
                f"infra/template.yaml refers to {logical_id}.{attribute}, which the emulator "
                f"was not given (tests/src/lib.rs, Fleet::template_resources)"
            )
        return known[attribute]

    def _get_att(self, arg: Any) -> str:
        logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
        return self._attribute(logical_id, attribute)

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        variables = {k: self.resolve(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self._attribute(logical_id, attribute)
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _join(self, arg: Any) -> str:
        separator, items = arg
        return separator.join(str(i) for i in self.resolve(items))

    def _if(self, arg: Any) -> Any:
        condition, when_true, when_false = arg
        return self.resolve(when_true if self._condition(condition) else when_false)

    def _select(self, arg: Any) -> Any:
        index, items = arg
        return self.resolve(items)[int(self.resolve(index))]

    def _split(self, arg: Any) -> list[str]:
        separator, text = arg
        return str(self.resolve(text)).split(separator)

    def _condition(self, name: str) -> bool:
        return bool(self._evaluate(self.template.get("Conditions", {})[name]))

    def _evaluate(self, expression: Any) -> Any:
        if isinstance(expression, dict) and len(expression) == 1:
            (key, arg), = expression.items()
            if key == "Fn::Equals":
                return self._evaluate(arg[0]) == self._evaluate(arg[1])
            if key == "Fn::Not":
                return not self._evaluate(arg[0])
            if key == "Fn::And":
                return all(self._evaluate(a) for a in arg)
            if key == "Fn::Or":
                return any(self._evaluate(a) for a in arg)
            if key == "Condition":
                return self._condition(arg)
        return self.resolve(expression)

"""What a Constrained Language session refuses, for the PowerShell the twin runs in that mode (tests/twin/README.md).

Source: Microsoft Learn, about_Language_Modes (Windows PowerShell 5.1): in ``ConstrainedLanguage`` all cmdlets and
language elements work, but only the allowed ("core") types may be used: ``New-Object`` only on them, .NET methods
only of them, type conversion only to them; ``Add-Type`` cannot load C# source or Win32 APIs. The texts are Windows
PowerShell 5.1's (``NewObjectStrings.CannotCreateTypeConstrainedLanguage``, ``MethodInvocationNotSupportedInConstrained
Language``, ``AddTypeStrings.CannotDefineNewType``, as quoted from real hosts in public reports). What the twin does
not see: an instance method's object type (``$x.Method()``): it cannot know it without running the code, so only
calls on type literals (``[T]::Method()``) are judged; a static property read (``[T]::Name``) is not judged (whether
5.1 refuses it is not documented); a COM object is refused like any other type.

:func:`first_refusal` reads the statements of a text in order and returns the first thing a Constrained Language
session refuses, as the error PowerShell prints, or None.
"""

from __future__ import annotations

from dataclasses import dataclass

from tests import pslint

FULL = "FullLanguage"
CONSTRAINED = "ConstrainedLanguage"
# The modes the twin runs PowerShell in; RestrictedLanguage and NoLanguage refuse scripts outright (not modelled).
MODELLED = (FULL, CONSTRAINED)

# about_Language_Modes, "Allowed Types" (Windows PowerShell 5.1), as accelerators and as the full names they stand for.
_ALLOWED = """
adsi adsisearcher alias allowemptycollection allowemptystring allownull argumentcompleter array bigint bool byte char
cimclass cimconverter ciminstance cimsession cimtype cmdletbinding cultureinfo datetime decimal double float guid
hashtable int int16 int32 int64 ipaddress long mailaddress nullstring object[] objectsecurity ordered outputtype
parameter physicaladdress pscredential pscustomobject psdefaultvalue pslistmodifier psobject psprimitivedictionary
pstypenameattribute ref regex sbyte securestring short single string supportswildcards switch timespan uint uint16
uint32 uint64 ulong uri ushort validatecount validatedrive validatelength validatenotnull validatenotnullorempty
validatepattern validaterange validatescript validateset version void wildcardpattern wmi wmiclass wmisearcher
x500distinguishedname x509certificate xml
system.array system.boolean system.byte system.char system.datetime system.decimal system.double system.guid
system.collections.hashtable system.int16 system.int32 system.int64 system.object[] system.sbyte system.single
system.string system.timespan system.uint16 system.uint32 system.uint64 system.uri system.version
system.text.regularexpressions.regex system.management.automation.pscustomobject system.management.automation.psobject
""".split()
ALLOWED_TYPES = frozenset(_ALLOWED)


@dataclass(frozen=True)
class Refusal:
    """One refused statement, as PowerShell prints it (the error record's message, category and id)."""

    message: str
    category: str
    error_id: str
    statement: str


def allowed(type_name: str) -> bool:
    """An allowed type, or an array of one (``[string[]]``)."""
    name = type_name.strip().lower()
    return name in ALLOWED_TYPES or name.removesuffix("[]") in ALLOWED_TYPES


def first_refusal(source: str) -> Refusal | None:
    """The first thing in ``source`` (run from its first statement on) a Constrained Language session refuses."""
    root = pslint.parse(source).root_node
    for statement in pslint.top_level_statements(root):
        found = _refusal(statement)
        if found is not None:
            return found
    return None


def _refusal(statement: object) -> Refusal | None:
    line = pslint.text(statement).splitlines()[0] if pslint.text(statement) else ""
    for node in pslint.walk(statement):
        if node.type == "command":
            name = (pslint.command_name(node) or "").lower()
            arguments = [pslint.text(a) for a in pslint.command_arguments(node)]
            if name == "new-object" and _created_type(arguments) is not None and not allowed(_created_type(arguments)):
                return Refusal("New-Object : Cannot create type. Only core types are supported in this language mode.",
                               "PermissionDenied: (:) [New-Object], PSNotSupportedException",
                               "CannotCreateTypeConstrainedLanguage,Microsoft.PowerShell.Commands.NewObjectCommand",
                               line)
            if name == "add-type" and any(a.lower() in ("-typedefinition", "-memberdefinition") for a in arguments):
                return Refusal("Add-Type : Cannot add type. Definition of new types is not supported in this language "
                               "mode.", "PermissionDenied: (:) [Add-Type], PSNotSupportedException",
                               "CannotDefineNewType,Microsoft.PowerShell.Commands.AddTypeCommand", line)
        if node.type == "invokation_expression":
            literal = next((c for c in node.children if c.type == "type_literal"), None)
            if literal is not None and not allowed(pslint.text(literal)[1:-1]):
                return Refusal("Cannot invoke method. Method invocation is supported only on core types in this "
                               "language mode.", "InvalidOperation: (:) [], RuntimeException",
                               "MethodInvocationNotSupportedInConstrainedLanguage", line)
        if node.type == "cast_expression":
            literal = next((c for c in node.children if c.type == "type_literal"), None)
            if literal is not None and not allowed(pslint.text(literal)[1:-1]):
                # PowerShell names the type's full name (PowerShell/PowerShell issue 14071); the twin the literal's.
                return Refusal(f'Cannot convert value to type "{pslint.text(literal)[1:-1]}". Only core types are '
                               "supported in this language mode.", "InvalidArgument: (:) [], RuntimeException",
                               "ConversionSupportedOnlyToCoreTypes", line)
    return None


def _created_type(arguments: list[str]) -> str | None:
    """The type ``New-Object`` is asked for: ``-TypeName X`` or its first positional argument; COM: ``-ComObject``."""
    for index, argument in enumerate(arguments):
        if argument.lower() in ("-typename", "-comobject") and index + 1 < len(arguments):
            return arguments[index + 1].strip("'\"")
    positional = [a for a in arguments if not a.startswith("-") and not a.startswith("(")]
    return positional[0].strip("'\"") if positional else None


__all__ = ["ALLOWED_TYPES", "CONSTRAINED", "FULL", "MODELLED", "Refusal", "allowed", "first_refusal"]

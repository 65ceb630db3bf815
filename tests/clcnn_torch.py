"""tests/clcnn_torch.py - PyTorch's reading of a clcnn model file (the graph-of-named-tensors syntax).

    from clcnn_torch import parse, GraphNet
    g = parse("model.txt")              # or parse(text): a string holding a newline is text
    net = GraphNet(g)                   # or GraphNet("model.txt"); an nn.Module, float32, train mode
    y = net(x)                          # the net's output (the last layer line)
    outs = net.forward_all(x)           # {name: tensor} for every line, "input" included
    total, parts = net.loss(outs, {"loss0": labels})

The file, one line each ('#' starts a comment, blank lines are skipped):

    input C H W                                        first line; the tensor named "input"
    [NAME =] OP[(IN, IN, ...)] [numbers] [key=value ...]   layer lines
    [NAME =] LOSS(X) [key=value ...]                   loss lines, after every layer line

Whitespace may stand around '=', ',', '(' and ')' (also inside key = value). Numbers and
key=value words may come in any order after the op and its inputs. NAME is a letter or '_' then
letters, digits and '_', at most 63 characters.

Layer ops (PyTorch module in brackets; values written N or HxW where noted):
  conv OUT kernel=K [stride=S] [pad=P] [dilation=D] [groups=G] [bias=0|1]      [Conv2d]  K,S,P,D: N|HxW
  convtranspose OUT kernel=K [stride=S] [pad=P] [outpad=Q] [dilation=D] [groups=G] [bias=0|1]
                                                                     [ConvTranspose2d] K,S,P,Q,D: N|HxW
  linear OUT [bias=0|1]           [Linear]; its input must be flat (after flatten)
  relu | sigmoid | tanh | flatten | globalavgpool (AdaptiveAvgPool2d(1)) | leakyrelu [slope=A]
  maxpool K [stride=S] [pad=P] | avgpool K [stride=S] [pad=P]     stride defaults to K; N|HxW
  batchnorm [eps=E] [momentum=M]  BatchNorm2d on C x H x W inputs, BatchNorm1d on flat ones
  dropout [p=P]
  add(A, B)                       elementwise sum; A and B of the same shape
  concat(A, B, ...)               along channels (dim 1), two or more inputs, other dims equal
  upsample S [mode=nearest|bilinear]   Upsample(scale_factor=S (integer), align_corners=False
                                       for bilinear); default nearest
  reshape C H W                   each sample viewed as C x H x W (same element count)
Defaults as torch's: bias=1, stride=1 (pools: K), pad=0, outpad=0, dilation=1, groups=1,
slope=0.01, eps=1e-5, momentum=0.1, p=0.5.

Inputs. A layer line without parentheses reads the previous layer line's output (the first one
reads "input"); add and concat must name theirs. An input is a name defined on a line above
(so there are no cycles): "input", a line's NAME, or the decimal index of an unnamed line.

Names. A layer line without NAME is named by its index among the layer lines, counting from 0
("0", "1", ...; the input line is not a layer line), so a file without names numbers its layers
as torch.nn.Sequential does, and its checkpoint keys are Sequential's ("0.weight",
"3.running_mean", ...). Every layer line is a submodule of GraphNet under its name, so the
checkpoint keys are NAME.weight, NAME.bias, NAME.running_mean, NAME.running_var and
NAME.num_batches_tracked. Names are refused when torch.nn.Module would refuse them as a
submodule's name or they clash with an attribute of a plain torch.nn.Module (train, eval,
forward, to, cuda, cpu, float, double, parameters, state_dict, training, _modules, ...: the
check is hasattr(torch.nn.Module(), NAME) with the installed torch), and "input" is taken.
GraphNet's own extra methods (forward_all, loss, ...) do not restrict names: a line may be
named "loss".

Losses (all mean reduction; weight=W defaults to 1):
  xent(X) [ignore=I] [weight=W]      CrossEntropyLoss(ignore_index=I, default -100); X is N x K
                                     logits with int64 labels N, or N x C x H x W with labels N x H x W
  bce(X) [weight=W]                  BCEWithLogitsLoss; target: one real per element of X
  mse(X) [weight=W]                  MSELoss; target shaped as X
  smoothl1(X) [beta=B] [weight=W]    SmoothL1Loss(beta=B, default 1.0); target shaped as X
  yolo(X) [coord=C] [noobj=N] [weight=W]
                                     YOLO v1's grid loss (lib/yolo.c): X is N x (5+K) x GH x GW,
                                     target N x 6 x GH x GW (object flag, tx, ty, tw, th, class);
                                     coord default 5, noobj 0.5
A loss line without parentheses reads the last layer line. The total loss is the sum over the
loss lines of weight * loss. A file without a loss line has one implicit "xent" (no options)
on the net's output.

LOSS NAMING RULE: a loss line's name is its NAME if it has one, else "loss" followed by its index
among the loss lines, counting from 0 in order of appearance, named ones counted too (so
"a = mse(x)" then "xent(y)" names the xent "loss1"). The implicit xent is "loss0". Targets are
keyed by these names. All names in a file - layer names (written or index), loss names (written
or "lossK") and "input" - must be distinct; a clash is an error.

Shapes follow the input shape line by line as tests/torch_interop.py's Sequential build did:
each module is run in eval mode on zeros of batch 2 and the output's per-sample shape is kept
(C x H x W for images, (K,) for flat tensors). Modules are created in file order, so with the
same seed a file without names and new ops gets the same initial weights as that build.
"""
import os
import re
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

MAX_NAME = 63
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_NAME_RE = re.compile(r"(" + _IDENT + r")\s*=\s*(.*)$")
_OP_RE = re.compile(r"(" + _IDENT + r")\s*(.*)$")
_IDENT_RE = re.compile(_IDENT + r"$")
_INDEX_RE = re.compile(r"(0|[1-9][0-9]*)$")

# op -> (count of numbers, allowed keys, required keys, input arity: (min, max or None))
LAYER_OPS = {
    "conv": (1, {"kernel", "stride", "pad", "dilation", "groups", "bias"}, {"kernel"}, (1, 1)),
    "convtranspose": (1, {"kernel", "stride", "pad", "outpad", "dilation", "groups", "bias"},
                      {"kernel"}, (1, 1)),
    "linear": (1, {"bias"}, set(), (1, 1)),
    "relu": (0, set(), set(), (1, 1)),
    "sigmoid": (0, set(), set(), (1, 1)),
    "tanh": (0, set(), set(), (1, 1)),
    "leakyrelu": (0, {"slope"}, set(), (1, 1)),
    "maxpool": (1, {"stride", "pad"}, set(), (1, 1)),
    "avgpool": (1, {"stride", "pad"}, set(), (1, 1)),
    "globalavgpool": (0, set(), set(), (1, 1)),
    "flatten": (0, set(), set(), (1, 1)),
    "batchnorm": (0, {"eps", "momentum"}, set(), (1, 1)),
    "dropout": (0, {"p"}, set(), (1, 1)),
    "add": (0, set(), set(), (2, 2)),
    "concat": (0, set(), set(), (2, None)),
    "upsample": (1, {"mode"}, set(), (1, 1)),
    "reshape": (3, set(), set(), (1, 1)),
}
LOSS_OPS = {
    "xent": {"ignore", "weight"},
    "bce": {"weight"},
    "mse": {"weight"},
    "smoothl1": {"beta", "weight"},
    "yolo": {"coord", "noobj", "weight"},
}


class ModelError(ValueError):
    """A model file that does not follow the syntax; the message starts with "line N: "."""


@dataclass
class Line:
    """One line of a model file.

    name: its name (written, or the layer index / "lossK" given by the naming rule)
    op: "input", a layer op or a loss op
    inputs: names of the tensors it reads, resolved ([] for the input line)
    numbers: positional words after the op, as written ("16", "3x5", ...)
    options: key=value words, as written ({"kernel": "3", ...})
    lineno: 1-based line number in the file (None for the implicit xent)
    named: whether NAME was written
    explicit: whether the inputs were written in parentheses"""
    name: str
    op: str
    inputs: list
    numbers: list
    options: dict
    lineno: object
    named: bool = False
    explicit: bool = False


@dataclass
class Graph:
    """parse()'s result: the input line, the layer lines in file order, the loss lines."""
    input: Line
    layers: list = field(default_factory=list)
    losses: list = field(default_factory=list)

    @property
    def output(self):
        """The net's output: the last layer line's name."""
        return self.layers[-1].name

    @property
    def input_shape(self):
        return tuple(int(v) for v in self.input.numbers)


def _err(lineno, msg):
    return ModelError(f"line {lineno}: {msg}" if lineno is not None else msg)


def check_name(name, lineno=None):
    """Refuses a NAME that the grammar or torch.nn.Module would refuse."""
    if not _IDENT_RE.match(name):
        raise _err(lineno, f"'{name}' is not a name (a letter or '_', then letters, digits, '_')")
    if len(name) > MAX_NAME:
        raise _err(lineno, f"name '{name[:20]}...' is longer than {MAX_NAME} characters")
    if name == "input":
        raise _err(lineno, "the name 'input' is the net's input")
    if hasattr(_PLAIN, name):
        raise _err(lineno, f"the name '{name}' clashes with torch.nn.Module's attribute of that name")


_PLAIN = nn.Module()


def _uint(text, lineno, what, zero_ok=False):
    if not re.fullmatch(r"[0-9]+", text) or (int(text) == 0 and not zero_ok):
        raise _err(lineno, f"{what} '{text}' is not a {'non-negative' if zero_ok else 'positive'} integer")
    return int(text)


def pair(text, lineno=None, what="value", zero_ok=True):
    """'N' -> (N, N), 'HxW' -> (H, W); with zero_ok=False both must be positive."""
    parts = text.split("x")
    ok = len(parts) in (1, 2) and all(re.fullmatch(r"[0-9]+", v) and (zero_ok or int(v) > 0) for v in parts)
    if not ok:
        raise _err(lineno, f"{what} '{text}' is not N or HxW of {'non-negative' if zero_ok else 'positive'} integers")
    return (int(parts[0]), int(parts[-1]))


def _real(text, lineno, what):
    try:
        v = float(text)
    except ValueError:
        raise _err(lineno, f"{what} '{text}' is not a number") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise _err(lineno, f"{what} '{text}' is not finite")
    return v


def _int(text, lineno, what):
    if not re.fullmatch(r"[-+]?[0-9]+", text):
        raise _err(lineno, f"{what} '{text}' is not an integer")
    return int(text)


def _split_line(text, lineno):
    """'[NAME =] OP[(IN, ...)] rest' -> (NAME or None, OP, [IN...] or None, [numbers], {options})."""
    name = None
    m = _NAME_RE.match(text)
    if m:
        name, text = m.group(1), m.group(2)
    m = _OP_RE.match(text)
    if not m:
        raise _err(lineno, f"expected an op, found '{text}'")
    op, rest = m.group(1), m.group(2)
    inputs = None
    if rest.startswith("("):
        close = rest.find(")")
        if close < 0:
            raise _err(lineno, "'(' without ')'")
        inputs = [w.strip() for w in rest[1:close].split(",")]
        if any(not w for w in inputs):
            raise _err(lineno, f"empty input name in '{rest[:close + 1]}'")
        rest = rest[close + 1:]
    if "(" in rest or ")" in rest or "," in rest:
        raise _err(lineno, f"unexpected '(', ')' or ',' in '{rest.strip()}'")
    rest = re.sub(r"\s*=\s*", "=", rest)
    numbers, options = [], {}
    for w in rest.split():
        if "=" in w:
            k, v = w.split("=", 1)
            if not _IDENT_RE.match(k) or not v:
                raise _err(lineno, f"'{w}' is not key=value")
            if k in options:
                raise _err(lineno, f"{k}= given twice")
            options[k] = v
        else:
            numbers.append(w)
    return name, op, inputs, numbers, options


def _read_source(path_or_text):
    if "\n" not in path_or_text and os.path.exists(path_or_text):
        with open(path_or_text) as f:
            return f.read()
    if "\n" not in path_or_text and not path_or_text.lstrip().startswith("input"):
        raise ModelError(f"{path_or_text}: no such file")
    return path_or_text


def parse(path_or_text):
    """Reads a model file (a path, or the text itself) into a Graph; raises ModelError."""
    text = _read_source(path_or_text)
    graph, names, index_names = None, {}, {}  # names: name -> "layer"/"loss"/"input"
    for lineno, raw in enumerate(text.splitlines(), 1):
        body = raw.split("#", 1)[0].strip()
        if not body:
            continue
        name, op, inputs, numbers, options = _split_line(body, lineno)
        if graph is None:
            if op != "input":
                raise _err(lineno, f"the first line must be 'input C H W', not '{op}'")
            if name is not None or inputs is not None or options:
                raise _err(lineno, "the input line is 'input C H W', without name, inputs or options")
            if len(numbers) != 3:
                raise _err(lineno, "input takes three numbers: C H W")
            for v, what in zip(numbers, ("C", "H", "W")):
                _uint(v, lineno, f"input {what}")
            graph = Graph(Line("input", "input", [], numbers, {}, lineno))
            names["input"] = "input"
            continue
        if op == "input":
            raise _err(lineno, "a second input line")
        if name is not None:
            check_name(name, lineno)
            if name in names:
                raise _err(lineno, f"the name '{name}' is already taken")
        if op in LOSS_OPS:
            allowed, want_numbers, arity = LOSS_OPS[op], 0, (1, 1)
        elif op in LAYER_OPS:
            if graph.losses:
                raise _err(lineno, f"layer line '{op}' after a loss line (losses come last)")
            want_numbers, allowed, required, arity = LAYER_OPS[op]
            missing = sorted(required - set(options))
            if missing:
                raise _err(lineno, f"{op} needs {missing[0]}=")
        else:
            raise _err(lineno, f"unknown op '{op}'")
        if len(numbers) != want_numbers:
            raise _err(lineno, f"{op} takes {want_numbers} number{'s' if want_numbers != 1 else ''}, "
                               f"found {len(numbers)}: {' '.join(numbers) or 'none'}")
        bad = sorted(set(options) - allowed)
        if bad:
            raise _err(lineno, f"{op} has no option '{bad[0]}'")
        explicit = inputs is not None
        if not explicit:
            if arity[0] > 1:
                raise _err(lineno, f"{op} must name its inputs: {op}(A, B{', ...' if arity[1] is None else ''})")
            inputs = [graph.layers[-1].name if graph.layers else "input"]
        if len(inputs) < arity[0] or (arity[1] is not None and len(inputs) > arity[1]):
            want = f"{arity[0]}" if arity[0] == arity[1] else f"at least {arity[0]}"
            raise _err(lineno, f"{op} takes {want} input{'s' if arity != (1, 1) else ''}, found {len(inputs)}")
        resolved = []
        for w in inputs:
            if _INDEX_RE.match(w):
                if w not in index_names:
                    raise _err(lineno, f"input '{w}': no unnamed layer line with that index above")
                resolved.append(w)
            elif not _IDENT_RE.match(w):
                raise _err(lineno, f"input '{w}' is not a name")
            elif names.get(w) not in ("input", "layer"):
                what = "a loss, not a tensor" if names.get(w) == "loss" else "not defined above"
                raise _err(lineno, f"input '{w}' is {what}")
            else:
                resolved.append(w)
        if op in LOSS_OPS:
            _check_loss_options(op, options, lineno)
            given = name
            name = name if name is not None else f"loss{len(graph.losses)}"
            if given is None and name in names:
                raise _err(lineno, f"this loss's default name '{name}' is already taken")
            names[name] = "loss"
            graph.losses.append(Line(name, op, resolved, numbers, options, lineno, given is not None, explicit))
        else:
            _check_layer_values(op, numbers, options, lineno)
            given = name
            if name is None:
                name = str(len(graph.layers))
                index_names[name] = True
            names[name] = "layer"
            graph.layers.append(Line(name, op, resolved, numbers, options, lineno, given is not None, explicit))
    if graph is None:
        raise ModelError("no 'input C H W' line")
    if not graph.layers:
        raise ModelError("no layer line")
    if not graph.losses:
        if "loss0" in names:
            raise ModelError("the implicit xent's name 'loss0' is already taken")
        graph.losses.append(Line("loss0", "xent", [graph.output], [], {}, None, False, False))
    return graph


def _check_layer_values(op, numbers, options, lineno):
    """Checks every number and option of a layer line, so errors name the line."""
    for k, v in options.items():
        what = f"{op} {k}"
        if k in ("kernel", "stride", "dilation"):
            pair(v, lineno, what, zero_ok=False)
        elif k in ("pad", "outpad"):
            pair(v, lineno, what)
        elif k == "groups":
            _uint(v, lineno, what)
        elif k == "bias":
            if v not in ("0", "1"):
                raise _err(lineno, f"{what} '{v}' is not 0 or 1")
        elif k in ("slope", "eps", "momentum", "p"):
            x = _real(v, lineno, what)
            if k == "p" and not 0 <= x <= 1:
                raise _err(lineno, f"dropout p '{v}' is not in [0, 1]")
            if k == "eps" and x <= 0:
                raise _err(lineno, f"batchnorm eps '{v}' is not positive")
        elif k == "mode":
            if v not in ("nearest", "bilinear"):
                raise _err(lineno, f"upsample mode '{v}' is not nearest or bilinear")
    if op in ("conv", "convtranspose", "linear"):
        _uint(numbers[0], lineno, f"{op} output size")
    elif op in ("maxpool", "avgpool"):
        pair(numbers[0], lineno, f"{op} size", zero_ok=False)
    elif op == "upsample":
        _uint(numbers[0], lineno, "upsample scale")
    elif op == "reshape":
        for v in numbers:
            _uint(v, lineno, "reshape size")


def _check_loss_options(op, options, lineno):
    for k, v in options.items():
        if k == "ignore":
            _int(v, lineno, "xent ignore")
        elif k == "weight":
            _real(v, lineno, f"{op} weight")
        elif k == "beta":
            if _real(v, lineno, "smoothl1 beta") < 0:
                raise _err(lineno, f"smoothl1 beta '{v}' is negative")
        elif k in ("coord", "noobj"):
            if _real(v, lineno, f"yolo {k}") < 0:
                raise _err(lineno, f"yolo {k} '{v}' is negative")


# ---- the parameter-free modules of the new ops ----------------------------------------------
class Add(nn.Module):
    """add(A, B): the elementwise sum of two tensors of one shape."""

    def forward(self, a, b):
        if a.shape != b.shape:
            raise ValueError(f"add: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
        return a + b


class Concat(nn.Module):
    """concat(A, B, ...): the inputs joined along channels (dim 1)."""

    def forward(self, *xs):
        return torch.cat(xs, 1)


class FlatLinear(nn.Linear):
    """linear on a features x 1 x 1 input: nn.Linear on its flattened samples (the same keys)."""

    def forward(self, x):
        return super().forward(x.flatten(1))


class Reshape(nn.Module):
    """reshape C H W: each sample viewed as C x H x W."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self):
        return "x".join(str(v) for v in self.shape)


def _numel(shape):
    n = 1
    for v in shape:
        n *= v
    return n


def make_module(line, in_shapes):
    """The torch module of a layer line whose inputs have per-sample shapes in_shapes."""
    op, kv, pos = line.op, line.options, line.numbers
    shape = in_shapes[0]
    c = shape[0]
    bias = kv.get("bias", "1") != "0"
    if op in ("conv", "convtranspose"):
        k = pair(kv["kernel"])
        s, p = pair(kv.get("stride", "1")), pair(kv.get("pad", "0"))
        d, g = pair(kv.get("dilation", "1")), int(kv.get("groups", "1"))
        if op == "conv":
            return nn.Conv2d(c, int(pos[0]), k, s, p, d, g, bias=bias)
        q = pair(kv.get("outpad", "0"))
        return nn.ConvTranspose2d(c, int(pos[0]), k, s, p, q, g, bias=bias, dilation=d)
    if op == "linear":
        if len(shape) == 3 and shape[1:] == (1, 1):  # features x 1 x 1 (a noise input) is flat too
            return FlatLinear(c, int(pos[0]), bias=bias)
        if len(shape) != 1:
            raise ValueError(f"linear needs a flat input (flatten first), not {'x'.join(map(str, shape))}")
        return nn.Linear(c, int(pos[0]), bias=bias)
    if op in ("maxpool", "avgpool"):
        k = pair(pos[0])
        s = pair(kv["stride"]) if "stride" in kv else k
        p = pair(kv.get("pad", "0"))
        return nn.MaxPool2d(k, s, p) if op == "maxpool" else nn.AvgPool2d(k, s, p)
    if op == "batchnorm":
        eps, mom = float(kv.get("eps", "1e-5")), float(kv.get("momentum", "0.1"))
        return nn.BatchNorm2d(c, eps, mom) if len(shape) == 3 else nn.BatchNorm1d(c, eps, mom)
    if op == "add":
        if in_shapes[0] != in_shapes[1]:
            raise ValueError(f"add: shapes {'x'.join(map(str, in_shapes[0]))} and "
                             f"{'x'.join(map(str, in_shapes[1]))} differ")
        return Add()
    if op == "concat":
        for s2 in in_shapes[1:]:
            if len(s2) != len(shape) or s2[1:] != shape[1:]:
                raise ValueError("concat: inputs " + ", ".join("x".join(map(str, s)) for s in in_shapes)
                                 + " differ in more than channels")
        return Concat()
    if op == "upsample":
        if len(shape) != 3:
            raise ValueError("upsample needs a C x H x W input")
        mode = kv.get("mode", "nearest")
        return nn.Upsample(scale_factor=int(pos[0]), mode=mode,
                           align_corners=False if mode == "bilinear" else None)
    if op == "reshape":
        want = tuple(int(v) for v in pos)
        if _numel(want) != _numel(shape):
            raise ValueError(f"reshape {'x'.join(map(str, shape))} ({_numel(shape)} elements) to "
                             f"{'x'.join(pos)} ({_numel(want)} elements)")
        return Reshape(want)
    return {"relu": lambda: nn.ReLU(), "sigmoid": lambda: nn.Sigmoid(), "tanh": lambda: nn.Tanh(),
            "leakyrelu": lambda: nn.LeakyReLU(float(kv.get("slope", "0.01"))),
            "flatten": lambda: nn.Flatten(), "globalavgpool": lambda: nn.AdaptiveAvgPool2d(1),
            "dropout": lambda: nn.Dropout(float(kv.get("p", "0.5")))}[op]()


class GraphNet(nn.Module):
    """The net a model file describes: one submodule per layer line, under the line's name.

    GraphNet(source): source is a Graph from parse(), a path or the text. Built in float32 and
    train mode (as any new nn.Module); .double() and .eval() as usual.
    Attributes: graph (the Graph), shapes ({name: per-sample shape}), output (the output's name).
    A line's module is net._modules[name] (not always net.NAME: a line may be named like one of
    GraphNet's own attributes, "loss" or "shapes", and the attribute keeps its meaning)."""

    def __init__(self, source):
        super().__init__()
        graph = source if isinstance(source, Graph) else parse(source)
        # plain attributes first: nn.Module would refuse them once a submodule has that name
        self.graph = graph
        self.output = graph.output
        self.shapes = {"input": graph.input_shape}
        for line in graph.layers:
            in_shapes = [self.shapes[i] for i in line.inputs]
            try:
                m = make_module(line, in_shapes)
                with torch.no_grad():  # follow the shape through the layer, as the Sequential build did
                    out = m.eval()(*[torch.zeros(2, *s) for s in in_shapes])
            except Exception as e:
                msg = str(e) if str(e).startswith(line.op) else f"{line.op}: {e}"
                raise _err(line.lineno, msg) from None
            m.train()
            self.shapes[line.name] = tuple(out.shape[1:])
            self._register(line.name, m)

    def _register(self, name, module):
        # add_module() would also refuse names of GraphNet's own methods (loss, forward_all);
        # parse() has refused whatever a plain nn.Module refuses, so the rest go in directly.
        if hasattr(type(self), name) or name in self.__dict__:
            self._modules[name] = module
        else:
            self.add_module(name, module)

    def forward_all(self, x):
        """{name: tensor} for every line: "input" is x, then every layer line in file order."""
        vals = {"input": x}
        for line in self.graph.layers:
            vals[line.name] = self._modules[line.name](*[vals[i] for i in line.inputs])
        return vals

    def forward(self, x):
        return self.forward_all(x)[self.output]

    def loss(self, outputs, targets):
        """(total, {loss name: value}) for outputs from forward_all and targets keyed by loss
        name (see the loss naming rule above). Each value is the unweighted mean loss; total is
        the sum of weight * value."""
        total, parts = None, {}
        for line in self.graph.losses:
            if line.name not in targets:
                raise KeyError(f"no target for loss '{line.name}'")
            v = loss_value(line, outputs[line.inputs[0]], targets[line.name])
            parts[line.name] = v
            w = float(line.options.get("weight", "1"))
            total = w * v if total is None else total + w * v
        return total, parts


def loss_value(line, x, t):
    """The mean loss of one loss line on tensor x with target t."""
    op, kv = line.op, line.options
    if op == "xent":
        if t.dtype != torch.int64:
            raise TypeError(f"loss '{line.name}': xent's target must be int64 class indices, not {t.dtype}")
        return F.cross_entropy(x, t, ignore_index=int(kv.get("ignore", "-100")))
    if op == "yolo":
        return yolo_loss(x, t, float(kv.get("coord", "5")), float(kv.get("noobj", "0.5")))
    if t.shape != x.shape:
        raise ValueError(f"loss '{line.name}': target shape {tuple(t.shape)} is not {tuple(x.shape)}")
    if op == "bce":
        return F.binary_cross_entropy_with_logits(x, t)
    if op == "mse":
        return F.mse_loss(x, t)
    return F.smooth_l1_loss(x, t, beta=float(kv.get("beta", "1.0")))


def yolo_loss(x, t, coord=5.0, noobj=0.5):
    """lib/yolo.c's loss in torch's terms: x N x (5+K) x GH x GW, t N x 6 x GH x GW. Per sample,
    summed over the cells: with an object BCEWithLogits(o, 1) + coord * squared errors of
    (x, y, w, h) against (tx, ty, sqrt(tw), sqrt(th)) + CrossEntropy of the class scores; without,
    noobj * BCEWithLogits(o, 0). The mean over the samples."""
    n, c = x.shape[0], x.shape[1]
    if c < 6 or t.shape != (n, 6, *x.shape[2:]):
        raise ValueError(f"yolo: input {tuple(x.shape)} needs 5 + classes channels and target N x 6 x H x W, "
                         f"not {tuple(t.shape)}")
    obj = t[:, 0]
    has = obj > 0
    bce = F.binary_cross_entropy_with_logits(x[:, 0], obj, reduction="none")
    total = (bce * torch.where(has, torch.ones_like(obj), torch.full_like(obj, noobj))).sum()
    want = torch.stack([t[:, 1], t[:, 2], t[:, 3].clamp(min=0).sqrt(), t[:, 4].clamp(min=0).sqrt()], 1)
    box = ((x[:, 1:5] - want) ** 2).sum(1)
    total = total + coord * box[has].sum()
    scores = x[:, 5:].permute(0, 2, 3, 1)[has]  # cells with an object x K
    if scores.shape[0]:
        total = total + F.cross_entropy(scores, t[:, 5][has].long(), reduction="sum")
    return total / n

#include "core/template.h"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <vector>

#include "core/json_writer.h"

namespace resonance::tmpl {
namespace dom = simdjson::dom;
namespace {

constexpr std::array<std::string_view, 3> kRoots = {"result", "payload", "task"};
constexpr size_t kMaxSegment = 200;

int RootIndex(std::string_view name) {
  for (size_t i = 0; i < kRoots.size(); ++i) {
    if (kRoots[i] == name) return static_cast<int>(i);
  }
  return -1;
}

bool SegmentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '$' || c == '@';
}

// One piece of a string: literal text, or a placeholder (root index >= 0).
struct Piece {
  std::string_view text;  // the literal, or the whole placeholder with its braces
  int root = -1;
  std::vector<std::string_view> path;
};

size_t ReadSegment(std::string_view s, size_t i) {
  size_t j = i;
  while (j < s.size() && SegmentChar(s[j])) ++j;
  return j;
}

// Splits s into pieces. kInvalidArgument (message without the place) for a malformed
// placeholder.
Status Split(std::string_view s, std::vector<Piece>& out) {
  size_t lit = 0;  // start of the pending literal
  size_t from = 0;
  while (true) {
    const size_t open = s.find("{{", from);
    if (open == std::string_view::npos) break;
    size_t j = open + 2;
    while (j < s.size() && s[j] == ' ') ++j;
    const size_t word_end = ReadSegment(s, j);
    const int root = RootIndex(s.substr(j, word_end - j));
    if (root < 0 || word_end == j) {
      from = open + 1;  // plain text; "{{{" may still open a placeholder one later
      continue;
    }
    Piece p;
    p.root = root;
    j = word_end;
    while (j < s.size() && s[j] == '.') {
      const size_t end = ReadSegment(s, j + 1);
      if (end == j + 1 || end - j - 1 > kMaxSegment) {
        return Status(Code::kInvalidArgument,
                      "malformed placeholder '" + std::string(s.substr(open, end - open + 1)) +
                          "': each part after a '.' is 1 to 200 of [A-Za-z0-9_-$@]");
      }
      p.path.push_back(s.substr(j + 1, end - j - 1));
      j = end;
    }
    while (j < s.size() && s[j] == ' ') ++j;
    if (s.substr(j, 2) != "}}") {
      return Status(Code::kInvalidArgument,
                    "malformed placeholder starting '" +
                        std::string(s.substr(open, std::min<size_t>(j + 1, s.size()) - open)) +
                        "': expected '}}'");
    }
    if (open > lit) out.push_back({s.substr(lit, open - lit), -1, {}});
    p.text = s.substr(open, j + 2 - open);
    out.push_back(std::move(p));
    lit = from = j + 2;
  }
  if (lit < s.size()) out.push_back({s.substr(lit), -1, {}});
  return Status::Ok();
}

Status CheckPieces(const std::vector<Piece>& pieces) {
  for (const Piece& p : pieces) {
    if (p.root != 2) continue;  // task: fixed fields, checked now
    bool known = p.path.size() == 1;
    if (known) {
      known = false;
      for (auto f : kTaskFields) known = known || p.path[0] == f;
    }
    if (!known) {
      return Status(Code::kInvalidArgument,
                    std::string(p.text) +
                        ": task has only id, action, queue, depth, trace_id and attempt");
    }
  }
  return Status::Ok();
}

std::string Where(const std::string& where, const Status& s) {
  return where.empty() ? s.message() : where + ": " + s.message();
}

}  // namespace

struct Scope::Impl {
  struct Root {
    bool present = false;
    dom::parser parser;
    dom::element value;
  };
  std::array<Root, 3> roots;

  Result<dom::element> Resolve(const Piece& p) const {
    const Root& r = roots[static_cast<size_t>(p.root)];
    const std::string name(kRoots[static_cast<size_t>(p.root)]);
    if (!r.present) {
      return Status(Code::kNotFound, std::string(p.text) + ": the task has no " + name);
    }
    dom::element cur = r.value;
    std::string at = name;
    for (std::string_view seg : p.path) {
      dom::object obj;
      dom::array arr;
      if (!cur.get_object().get(obj)) {
        if (obj.at_key(seg).get(cur)) {
          return Status(Code::kNotFound,
                        std::string(p.text) + ": " + at + " has no field " + std::string(seg));
        }
      } else if (!cur.get_array().get(arr)) {
        size_t index = 0;
        auto [ptr, ec] = std::from_chars(seg.data(), seg.data() + seg.size(), index);
        if (ec != std::errc() || ptr != seg.data() + seg.size() || arr.at(index).get(cur)) {
          return Status(Code::kNotFound, std::string(p.text) + ": " + at + " has no element " +
                                             std::string(seg));
        }
      } else {
        return Status(Code::kNotFound, std::string(p.text) + ": " + at +
                                           " is not an object or array");
      }
      at += ".";
      at += seg;
    }
    return cur;
  }
};

namespace {

// Appends the text of a value: strings unquoted, the rest as compact JSON.
void AppendText(std::string& out, dom::element v) {
  std::string_view s;
  if (!v.get_string().get(s)) {
    out.append(s);
  } else {
    out += simdjson::minify(v);
  }
}

// Renders one string value as JSON (typed when it is one placeholder) or as text.
Status RenderString(std::string_view s, const Scope::Impl& scope, bool as_json, std::string& out) {
  std::vector<Piece> pieces;
  if (Status st = Split(s, pieces); !st.ok()) return st;
  if (Status st = CheckPieces(pieces); !st.ok()) return st;
  if (as_json && pieces.size() == 1 && pieces[0].root >= 0) {
    auto v = scope.Resolve(pieces[0]);
    if (!v.ok()) return v.status();
    out += simdjson::minify(*v);
    return Status::Ok();
  }
  std::string text;
  for (const Piece& p : pieces) {
    if (p.root < 0) {
      text.append(p.text);
      continue;
    }
    auto v = scope.Resolve(p);
    if (!v.ok()) return v.status();
    AppendText(text, *v);
  }
  if (as_json) {
    AppendJsonString(out, text);
  } else {
    out += text;
  }
  return Status::Ok();
}

// Walks a document: with scope, renders into out; without, only checks.
Status Walk(dom::element e, const Scope::Impl* scope, const std::string& where, std::string* out) {
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      if (out) out->push_back('{');
      bool first = true;
      for (auto field : dom::object(e)) {
        if (out) {
          if (!first) out->push_back(',');
          AppendJsonString(*out, field.key);
          out->push_back(':');
        }
        first = false;
        if (Status s = Walk(field.value, scope, where + "." + std::string(field.key), out); !s.ok()) {
          return s;
        }
      }
      if (out) out->push_back('}');
      return Status::Ok();
    }
    case dom::element_type::ARRAY: {
      if (out) out->push_back('[');
      size_t i = 0;
      for (auto item : dom::array(e)) {
        if (out && i) out->push_back(',');
        if (Status s = Walk(item, scope, where + "[" + std::to_string(i) + "]", out); !s.ok()) {
          return s;
        }
        ++i;
      }
      if (out) out->push_back(']');
      return Status::Ok();
    }
    case dom::element_type::STRING: {
      const std::string_view s = std::string_view(e);
      Status st;
      if (scope) {
        st = RenderString(s, *scope, true, *out);
      } else {
        std::vector<Piece> pieces;
        st = Split(s, pieces);
        if (st.ok()) st = CheckPieces(pieces);
      }
      return st.ok() ? st : Status(st.code(), Where(where, st));
    }
    default:
      if (out) *out += simdjson::minify(e);
      return Status::Ok();
  }
}

Result<dom::element> ParseDoc(std::string_view json, dom::parser& parser) {
  dom::element e;
  if (parser.parse(json.data(), json.size()).get(e)) {
    return Status(Code::kInvalidArgument, "not valid JSON");
  }
  return e;
}

}  // namespace

bool MayHavePlaceholders(std::string_view json) {
  return json.find("{{") != std::string_view::npos || json.find("\\u007") != std::string_view::npos;
}

Status CheckJson(std::string_view json, const std::string& where) {
  if (!MayHavePlaceholders(json)) return Status::Ok();
  dom::parser parser;
  auto e = ParseDoc(json, parser);
  if (!e.ok()) return Status(Code::kInvalidArgument, where + ": " + e.status().message());
  return Walk(*e, nullptr, where, nullptr);
}

Status CheckText(std::string_view text, const std::string& where) {
  std::vector<Piece> pieces;
  Status s = Split(text, pieces);
  if (s.ok()) s = CheckPieces(pieces);
  return s.ok() ? s : Status(s.code(), Where(where, s));
}

Scope::Scope() : impl_(std::make_unique<Impl>()) {}
Scope::~Scope() = default;

Status Scope::Set(std::string_view root, std::string_view json) {
  const int i = RootIndex(root);
  if (i < 0) return Status(Code::kInvalidArgument, "no template root " + std::string(root));
  Impl::Root& r = impl_->roots[static_cast<size_t>(i)];
  r.present = false;
  if (json.empty()) return Status::Ok();
  auto e = ParseDoc(json, r.parser);
  if (!e.ok()) return Status(Code::kInvalidArgument, std::string(root) + ": not valid JSON");
  r.value = *e;
  r.present = true;
  return Status::Ok();
}

Result<std::string> RenderJson(std::string_view json, const Scope& scope, const std::string& where) {
  if (!MayHavePlaceholders(json)) return std::string(json);
  dom::parser parser;
  auto e = ParseDoc(json, parser);
  if (!e.ok()) return Status(Code::kInvalidArgument, where + ": " + e.status().message());
  std::string out;
  out.reserve(json.size());
  if (Status s = Walk(*e, scope.impl_.get(), where, &out); !s.ok()) return s;
  return out;
}

Result<std::string> RenderText(std::string_view text, const Scope& scope, const std::string& where) {
  if (text.find("{{") == std::string_view::npos) return std::string(text);
  std::string out;
  Status s = RenderString(text, *scope.impl_, false, out);
  if (!s.ok()) return Status(s.code(), Where(where, s));
  return out;
}

}  // namespace resonance::tmpl

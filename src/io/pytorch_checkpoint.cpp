#include "io/pytorch_checkpoint.h"

#include <zip.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/error.h"
#include "io/mapped_file.h"

namespace mclip {
namespace {

// Bounds that keep a corrupt length or count from turning into a huge allocation. A state dict
// pickle takes about 150 bytes and 15 objects per tensor; the stack, the marks and the memo are
// bounded like the objects, since each opcode can grow them without creating one.
constexpr uint64_t kMaxPickleBytes = uint64_t{64} << 20;
constexpr size_t kMaxPickleObjects = size_t{2} << 20;
// References held by tuples, lists, dicts and sets, all together. The memo lets one opcode of two
// bytes add a reference without creating an object, so they are bounded on their own; a state
// dict holds about 16 per tensor.
constexpr size_t kMaxPickleReferences = size_t{8} << 20;
constexpr size_t kMaxTensorRank = 32;
constexpr int64_t kMaxElements = int64_t{1} << 40;
// Deflate never expands data more than 1032:1, which bounds what a compressed record may claim.
constexpr uint64_t kMaxDeflateRatio = 1032;
// Copies of views (stride-0 broadcasts above all) may hold more elements than their storage, but
// never more than this beyond what the archive itself could hold.
constexpr uint64_t kExpansionAllowanceBytes = uint64_t{256} << 20;

// torch's magic number 0x1950a86a20f9469cfc6c as the legacy format pickles it first: LONG1 with
// 10 little-endian bytes.
constexpr std::array<uint8_t, 12> kLegacyMagic = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

// ---------------------------------------------------------------------------------------------
// Pickle values

enum class Kind : uint8_t { none, boolean, integer, floating, text, bytes, tuple, list, dict, set, global, storage, tensor };

const char* kind_name(Kind kind) {
    switch (kind) {
        case Kind::none: return "None";
        case Kind::boolean: return "bool";
        case Kind::integer: return "int";
        case Kind::floating: return "float";
        case Kind::text: return "str";
        case Kind::bytes: return "bytes";
        case Kind::tuple: return "tuple";
        case Kind::list: return "list";
        case Kind::dict: return "dict";
        case Kind::set: return "set";
        case Kind::global: return "global";
        case Kind::storage: return "storage";
        case Kind::tensor: return "tensor";
    }
    return "?";
}

// What an allowed global does when the pickle calls it.
enum class GlobalRole : uint8_t { ordered_dict, rebuild_tensor, rebuild_parameter, storage_type };

struct KnownGlobal {
    std::string_view name;
    GlobalRole role;
    DType dtype;  // for storage types
};

// Everything a state dict needs, and nothing that could do harm if it were called.
constexpr KnownGlobal kKnownGlobals[] = {
    {"collections.OrderedDict", GlobalRole::ordered_dict, DType::f32},
    {"torch._utils._rebuild_tensor_v2", GlobalRole::rebuild_tensor, DType::f32},
    {"torch._utils._rebuild_tensor", GlobalRole::rebuild_tensor, DType::f32},
    {"torch._utils._rebuild_parameter", GlobalRole::rebuild_parameter, DType::f32},
    {"torch._utils._rebuild_parameter_with_state", GlobalRole::rebuild_parameter, DType::f32},
    {"torch.FloatStorage", GlobalRole::storage_type, DType::f32},
    {"torch.HalfStorage", GlobalRole::storage_type, DType::f16},
    {"torch.BFloat16Storage", GlobalRole::storage_type, DType::bf16},
    {"torch.DoubleStorage", GlobalRole::storage_type, DType::f64},
    {"torch.LongStorage", GlobalRole::storage_type, DType::i64},
    {"torch.IntStorage", GlobalRole::storage_type, DType::i32},
    {"torch.ShortStorage", GlobalRole::storage_type, DType::i16},
    {"torch.CharStorage", GlobalRole::storage_type, DType::i8},
    {"torch.ByteStorage", GlobalRole::storage_type, DType::u8},
    {"torch.BoolStorage", GlobalRole::storage_type, DType::boolean},
};

struct Value;

// A tensor as the pickle describes it: a strided view of a storage.
struct TensorView {
    const Value* storage = nullptr;
    int64_t offset = 0;
    Shape size;
    std::vector<int64_t> stride;
};

// Values live in an arena owned by the unpickler and refer to each other by plain pointers, so
// deep or cyclic structures (a hostile file can build both) cost no recursion and leak nothing.
struct Value {
    Kind kind = Kind::none;
    int64_t integer = 0;  // integer and boolean; numel for a storage
    double floating = 0;
    std::string text;     // str and bytes; "module.name" for a global; the record key for a storage
    GlobalRole role = GlobalRole::ordered_dict;
    DType dtype = DType::f32;                        // storage and storage-type global
    std::vector<Value*> items;                       // tuple, list, set
    std::vector<std::pair<Value*, Value*>> entries;  // dict, in insertion order
    std::unique_ptr<TensorView> tensor;
};

// a * b + c, or nullopt when it overflows int64.
std::optional<int64_t> multiply_add(int64_t a, int64_t b, int64_t c) {
    int64_t product, sum;
    if (__builtin_mul_overflow(a, b, &product) || __builtin_add_overflow(product, c, &sum)) return std::nullopt;
    return sum;
}

// ---------------------------------------------------------------------------------------------
// The unpickler: a stack machine over the protocol 2-5 opcodes that state dicts use. It builds
// plain values and tensor descriptions; "calls" only ever select one of the known globals.

class Unpickler {
public:
    Unpickler(std::span<const std::byte> pickle, std::string path, std::string record)
        : data_(pickle), path_(std::move(path)), record_(std::move(record)) {
        none_ = make(Kind::none);
        true_ = make(Kind::boolean);
        true_->integer = 1;
        false_ = make(Kind::boolean);
    }

    // Runs the pickle to its STOP opcode and returns the unpickled object.
    const Value* load();

private:
    [[noreturn]] void fail(const std::string& why) const {
        throw Error(ErrorCode::invalid_input, path_ + ": corrupt or unsupported checkpoint pickle (" + record_ + ", byte " +
                                                  std::to_string(opcode_position_) + "): " + why);
    }

    uint8_t next_u8() { return static_cast<uint8_t>(next_bytes(1)[0]); }
    uint64_t next_le(size_t n) {
        const auto bytes = next_bytes(n);
        uint64_t v = 0;
        for (size_t i = n; i-- > 0;) v = v << 8 | static_cast<uint8_t>(bytes[i]);
        return v;
    }
    std::string_view next_bytes(uint64_t n) {
        if (n > data_.size() - position_) fail("the pickle ends in the middle of an opcode (truncated)");
        const std::string_view bytes(reinterpret_cast<const char*>(data_.data() + position_), n);
        position_ += n;
        return bytes;
    }
    std::string_view next_line() {
        const auto* begin = reinterpret_cast<const char*>(data_.data() + position_);
        const auto* newline = static_cast<const char*>(std::memchr(begin, '\n', data_.size() - position_));
        if (!newline) fail("unterminated text line (truncated)");
        const std::string_view line(begin, newline - begin);
        position_ += line.size() + 1;
        return line;
    }
    // A two's complement little-endian integer of n bytes (LONG1 and LONG4).
    int64_t next_long(uint64_t n) {
        if (n > 8) fail("integer wider than 64 bits");
        if (n == 0) return 0;
        const uint64_t raw = next_le(n);
        const int unused_bits = static_cast<int>(64 - 8 * n);
        return static_cast<int64_t>(raw << unused_bits) >> unused_bits;
    }

    Value* make(Kind kind) {
        if (arena_.size() >= kMaxPickleObjects) fail("implausibly many objects (more than " + std::to_string(kMaxPickleObjects) + ")");
        arena_.push_back(std::make_unique<Value>());
        arena_.back()->kind = kind;
        return arena_.back().get();
    }
    Value* make_integer(int64_t v) {
        Value* value = make(Kind::integer);
        value->integer = v;
        return value;
    }
    Value* make_text(Kind kind, std::string_view text) {
        Value* value = make(kind);
        value->text = text;
        return value;
    }

    // The stack; objects pushed before the innermost MARK are out of reach until POP_MARK.
    size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
    void push(Value* v) {
        if (stack_.size() >= kMaxPickleObjects) fail("implausibly deep stack");
        stack_.push_back(v);
    }
    Value* pop() {
        if (stack_.size() <= fence()) fail("stack underflow");
        Value* v = stack_.back();
        stack_.pop_back();
        return v;
    }
    Value* top() {
        if (stack_.size() <= fence()) fail("stack underflow");
        return stack_.back();
    }
    // Counts references about to be stored in containers against kMaxPickleReferences.
    void add_references(size_t n) {
        references_ += n;
        if (references_ > kMaxPickleReferences) fail("implausibly many container items (more than " + std::to_string(kMaxPickleReferences) + ")");
    }
    std::vector<Value*> pop_to_mark() {
        if (marks_.empty()) fail("no MARK to pop to");
        const size_t mark = marks_.back();
        marks_.pop_back();
        add_references(stack_.size() - mark);
        std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
        stack_.resize(mark);
        return items;
    }
    Value* top_of_kind(Kind kind, const char* opcode) {
        Value* v = top();
        if (v->kind != kind) fail(std::string(opcode) + " applied to a " + kind_name(v->kind) + ", not a " + kind_name(kind));
        return v;
    }

    void memo_put(uint64_t index) {
        if (memo_.size() >= kMaxPickleObjects && !memo_.count(index)) fail("implausibly many memo entries");
        memo_[index] = top();
    }
    void memo_get(uint64_t index) {
        auto it = memo_.find(index);
        if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored");
        push(it->second);
    }

    void push_global(std::string_view module, std::string_view name);
    Value* call(Value* callable, Value* args);
    Value* construct(Value* cls, Value* args);
    Value* persistent_load(Value* pid);
    Value* rebuild_tensor(const std::vector<Value*>& args);
    int64_t integer_of(const Value* v, const char* what) {
        if (v->kind != Kind::integer) fail(std::string(what) + " is a " + kind_name(v->kind) + ", not an int");
        return v->integer;
    }
    std::vector<int64_t> dims_of(const Value* v, const char* what);

    std::span<const std::byte> data_;
    std::string path_;
    std::string record_;
    size_t position_ = 0;
    size_t opcode_position_ = 0;
    std::vector<std::unique_ptr<Value>> arena_;
    size_t references_ = 0;
    std::vector<Value*> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, Value*> memo_;
    std::map<std::string, Value*> storages_;  // by record key: views of one storage share it
    Value* none_ = nullptr;
    Value* true_ = nullptr;
    Value* false_ = nullptr;
};

const Value* Unpickler::load() {
    while (true) {
        opcode_position_ = position_;
        const uint8_t opcode = next_u8();
        switch (opcode) {
            case 0x80: {  // PROTO
                const uint8_t protocol = next_u8();
                if (protocol > 5) fail("pickle protocol " + std::to_string(protocol) + " is newer than 5");
                break;
            }
            case 0x95: {  // FRAME: a length hint for buffered readers; the opcodes follow inline
                if (next_le(8) > data_.size() - position_) fail("frame runs past the end of the pickle (truncated)");
                break;
            }
            case '.':  // STOP
                if (stack_.empty()) fail("STOP with an empty stack");
                return stack_.back();

            case '(':  // MARK
                if (marks_.size() >= kMaxPickleObjects) fail("implausibly many MARKs");
                marks_.push_back(stack_.size());
                break;
            case '0':                                           // POP (a MARK when the stack above it is empty)
                if (stack_.size() > fence()) stack_.pop_back();
                else pop_to_mark();
                break;
            case '1': pop_to_mark(); break;  // POP_MARK
            case '2': push(top()); break;    // DUP

            case 'N': push(none_); break;
            case 0x88: push(true_); break;   // NEWTRUE
            case 0x89: push(false_); break;  // NEWFALSE
            case 'J': push(make_integer(static_cast<int32_t>(next_le(4)))); break;  // BININT
            case 'K': push(make_integer(next_u8())); break;                         // BININT1
            case 'M': push(make_integer(static_cast<int64_t>(next_le(2)))); break;  // BININT2
            case 0x8a: push(make_integer(next_long(next_u8()))); break;             // LONG1
            case 0x8b: {                                                            // LONG4
                const auto n = static_cast<int32_t>(next_le(4));
                if (n < 0) fail("negative LONG4 length");
                push(make_integer(next_long(static_cast<uint64_t>(n))));
                break;
            }
            case 'G': {  // BINFLOAT: a big-endian IEEE double
                const auto bytes = next_bytes(8);
                uint64_t bits = 0;
                for (char c : bytes) bits = bits << 8 | static_cast<uint8_t>(c);
                Value* v = make(Kind::floating);
                std::memcpy(&v->floating, &bits, 8);
                push(v);
                break;
            }

            case 'X': push(make_text(Kind::text, next_bytes(next_le(4)))); break;   // BINUNICODE
            case 0x8c: push(make_text(Kind::text, next_bytes(next_u8()))); break;   // SHORT_BINUNICODE
            case 0x8d: push(make_text(Kind::text, next_bytes(next_le(8)))); break;  // BINUNICODE8
            case 'T': {                                                             // BINSTRING (Python 2 str)
                const auto n = static_cast<int32_t>(next_le(4));
                if (n < 0) fail("negative BINSTRING length");
                push(make_text(Kind::text, next_bytes(static_cast<uint64_t>(n))));
                break;
            }
            case 'U': push(make_text(Kind::text, next_bytes(next_u8()))); break;     // SHORT_BINSTRING
            case 'B': push(make_text(Kind::bytes, next_bytes(next_le(4)))); break;   // BINBYTES
            case 'C': push(make_text(Kind::bytes, next_bytes(next_u8()))); break;    // SHORT_BINBYTES
            case 0x8e: push(make_text(Kind::bytes, next_bytes(next_le(8)))); break;  // BINBYTES8
            case 0x96: push(make_text(Kind::bytes, next_bytes(next_le(8)))); break;  // BYTEARRAY8

            case ')': push(make(Kind::tuple)); break;  // EMPTY_TUPLE
            case 't': {                                // TUPLE
                Value* v = make(Kind::tuple);
                v->items = pop_to_mark();
                push(v);
                break;
            }
            case 0x85: case 0x86: case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
                Value* v = make(Kind::tuple);
                add_references(opcode - 0x84u);
                v->items.resize(opcode - 0x84u);
                for (size_t i = v->items.size(); i-- > 0;) v->items[i] = pop();
                push(v);
                break;
            }
            case ']': push(make(Kind::list)); break;  // EMPTY_LIST
            case 'l': {                               // LIST
                Value* v = make(Kind::list);
                v->items = pop_to_mark();
                push(v);
                break;
            }
            case 'a': {  // APPEND
                Value* item = pop();
                add_references(1);
                top_of_kind(Kind::list, "APPEND")->items.push_back(item);
                break;
            }
            case 'e': {  // APPENDS
                auto items = pop_to_mark();
                auto& list = top_of_kind(Kind::list, "APPENDS")->items;
                list.insert(list.end(), items.begin(), items.end());
                break;
            }
            case '}': push(make(Kind::dict)); break;  // EMPTY_DICT
            case 'd': case 'u': {                     // DICT, SETITEMS: key/value pairs above a MARK
                auto items = pop_to_mark();
                if (items.size() % 2) fail("odd number of items for a dict");
                Value* dict = opcode == 'd' ? make(Kind::dict) : top_of_kind(Kind::dict, "SETITEMS");
                for (size_t i = 0; i < items.size(); i += 2) dict->entries.emplace_back(items[i], items[i + 1]);
                if (opcode == 'd') push(dict);
                break;
            }
            case 's': {  // SETITEM
                Value* value = pop();
                Value* key = pop();
                add_references(2);
                top_of_kind(Kind::dict, "SETITEM")->entries.emplace_back(key, value);
                break;
            }
            case 0x8f: push(make(Kind::set)); break;  // EMPTY_SET
            case 0x90: {                              // ADDITEMS
                auto items = pop_to_mark();
                auto& set = top_of_kind(Kind::set, "ADDITEMS")->items;
                set.insert(set.end(), items.begin(), items.end());
                break;
            }
            case 0x91: {  // FROZENSET
                Value* v = make(Kind::set);
                v->items = pop_to_mark();
                push(v);
                break;
            }

            case 'q': memo_put(next_u8()); break;       // BINPUT
            case 'r': memo_put(next_le(4)); break;      // LONG_BINPUT
            case 0x94: memo_put(memo_.size()); break;   // MEMOIZE
            case 'h': memo_get(next_u8()); break;       // BINGET
            case 'j': memo_get(next_le(4)); break;      // LONG_BINGET

            case 'c': {  // GLOBAL "module\nname\n"
                const std::string_view module = next_line();
                push_global(module, next_line());
                break;
            }
            case 0x93: {  // STACK_GLOBAL
                Value* name = pop();
                Value* module = pop();
                if (module->kind != Kind::text || name->kind != Kind::text) fail("STACK_GLOBAL needs two strings");
                push_global(module->text, name->text);
                break;
            }
            case 'R': {  // REDUCE: callable(*args)
                Value* args = pop();
                Value* callable = pop();
                push(call(callable, args));
                break;
            }
            case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
                Value* args = pop();
                Value* cls = pop();
                push(construct(cls, args));
                break;
            }
            case 0x92: {  // NEWOBJ_EX: cls.__new__(cls, *args, **kwargs)
                Value* kwargs = pop();
                Value* args = pop();
                Value* cls = pop();
                if (kwargs->kind != Kind::dict || !kwargs->entries.empty()) fail("NEWOBJ_EX with keyword arguments");
                push(construct(cls, args));
                break;
            }
            case 'b': {  // BUILD: sets the state (attributes) of the object below
                pop();
                const Kind target = top()->kind;
                // An OrderedDict from state_dict() carries its `_metadata` attribute this way;
                // the tensors do not depend on it.
                if (target != Kind::dict && target != Kind::tensor) fail(std::string("BUILD on a ") + kind_name(target));
                break;
            }
            case 'Q': push(persistent_load(pop())); break;  // BINPERSID

            case 'I': case 'L': case 'F': case 'S': case 'V': case 'p': case 'g': case 'P':
                fail(std::string("text opcode '") + static_cast<char>(opcode) +
                     "' of pickle protocol 0 (torch.save writes protocol 2 or later)");
            case 'i': case 'o': case 0x82: case 0x83: case 0x84: case 0x97: case 0x98: {
                char hex[8];
                std::snprintf(hex, sizeof hex, "0x%02x", opcode);
                fail(std::string("unsupported pickle opcode ") + hex + " (INST, OBJ, EXT or out-of-band buffers)");
            }
            default: {
                char hex[8];
                std::snprintf(hex, sizeof hex, "0x%02x", opcode);
                fail(std::string("unknown pickle opcode ") + hex);
            }
        }
    }
}

void Unpickler::push_global(std::string_view module, std::string_view name) {
    const std::string full = std::string(module) + "." + std::string(name);
    for (const auto& known : kKnownGlobals) {
        if (known.name == full) {
            Value* v = make_text(Kind::global, full);
            v->role = known.role;
            v->dtype = known.dtype;
            push(v);
            return;
        }
    }
    // Printable in the message even when a corrupt file puts binary junk here.
    std::string shown;
    for (char c : full.substr(0, 200)) shown += (c >= 0x20 && c < 0x7f) ? c : '?';
    throw Error(ErrorCode::invalid_input,
                path_ + ": refusing to load " + record_ + ": its pickle asks for the global '" + shown +
                    "', which is not one of the tensor-rebuilding functions a checkpoint may use. mclip never runs "
                    "pickle code; if this file holds a whole pickled model rather than a state dict, re-save it with "
                    "torch.save(model.state_dict(), path)");
}

Value* Unpickler::call(Value* callable, Value* args) {
    if (callable->kind != Kind::global) fail(std::string("REDUCE calls a ") + kind_name(callable->kind));
    if (args->kind != Kind::tuple) fail("REDUCE arguments are a " + std::string(kind_name(args->kind)) + ", not a tuple");
    switch (callable->role) {
        case GlobalRole::ordered_dict:
            if (!args->items.empty()) fail("OrderedDict called with arguments");
            return make(Kind::dict);
        case GlobalRole::rebuild_tensor: return rebuild_tensor(args->items);
        case GlobalRole::rebuild_parameter:
            // _rebuild_parameter(data, requires_grad, backward_hooks[, state]): the tensor is the data.
            if (args->items.size() < 3 || args->items.size() > 4 || args->items[0]->kind != Kind::tensor) {
                fail(callable->text + " expects (tensor, requires_grad, backward_hooks[, state])");
            }
            return args->items[0];
        case GlobalRole::storage_type: break;
    }
    fail("'" + callable->text + "' cannot be called");
}

Value* Unpickler::construct(Value* cls, Value* args) {
    if (cls->kind != Kind::global || cls->role != GlobalRole::ordered_dict) {
        fail("NEWOBJ of a " + std::string(cls->kind == Kind::global ? cls->text : kind_name(cls->kind)));
    }
    if (args->kind != Kind::tuple || !args->items.empty()) fail("OrderedDict created with arguments");
    return make(Kind::dict);
}

// torch.save's persistent id for a storage: ('storage', torch.<Type>Storage, key, location, numel).
Value* Unpickler::persistent_load(Value* pid) {
    const auto& f = pid->items;
    if (pid->kind != Kind::tuple || f.size() != 5 || f[0]->kind != Kind::text || f[0]->text != "storage" ||
        f[1]->kind != Kind::global || f[1]->role != GlobalRole::storage_type || f[2]->kind != Kind::text ||
        f[3]->kind != Kind::text || f[4]->kind != Kind::integer) {
        fail("unsupported persistent id (expected ('storage', storage type, key, location, numel))");
    }
    const std::string& key = f[2]->text;
    if (key.empty() || key.size() > 256 || key.find('/') != std::string::npos) fail("implausible storage key");
    const int64_t numel = f[4]->integer;
    if (numel < 0 || numel > kMaxElements) fail("storage '" + key + "' has an implausible size of " + std::to_string(numel) + " elements");
    auto [it, inserted] = storages_.try_emplace(key, nullptr);
    if (!inserted) {
        const Value* seen = it->second;
        if (seen->dtype != f[1]->dtype || seen->integer != numel) {
            fail("storage '" + key + "' is declared twice with different types or sizes");
        }
        return it->second;
    }
    Value* storage = make_text(Kind::storage, key);
    storage->dtype = f[1]->dtype;
    storage->integer = numel;
    it->second = storage;
    return storage;
}

std::vector<int64_t> Unpickler::dims_of(const Value* v, const char* what) {
    if (v->kind != Kind::tuple) fail(std::string("tensor ") + what + " is a " + kind_name(v->kind) + ", not a tuple");
    if (v->items.size() > kMaxTensorRank) fail(std::string("tensor ") + what + " has " + std::to_string(v->items.size()) + " dimensions");
    std::vector<int64_t> dims;
    for (const Value* d : v->items) {
        const int64_t n = integer_of(d, what);
        if (n < 0 || n > kMaxElements) fail(std::string("tensor ") + what + " holds an implausible value " + std::to_string(n));
        dims.push_back(n);
    }
    return dims;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
// or the older _rebuild_tensor(storage, storage_offset, size, stride).
Value* Unpickler::rebuild_tensor(const std::vector<Value*>& args) {
    if (args.size() < 4 || args.size() > 7 || args[0]->kind != Kind::storage) {
        fail("tensor rebuild expects (storage, offset, size, stride, ...)");
    }
    auto view = std::make_unique<TensorView>();
    view->storage = args[0];
    view->offset = integer_of(args[1], "storage offset");
    view->size = dims_of(args[2], "size");
    view->stride = dims_of(args[3], "stride");
    if (view->size.size() != view->stride.size()) fail("tensor size and stride differ in rank");
    if (view->offset < 0 || view->offset > kMaxElements) fail("implausible storage offset " + std::to_string(view->offset));
    int64_t elements = 1;
    for (int64_t d : view->size) {
        const auto product = multiply_add(elements, d, 0);
        if (!product || *product > kMaxElements) fail("tensor of shape " + shape_to_string(view->size) + " is implausibly large");
        elements = *product;
    }
    if (elements > 0) {
        // The last element a view reaches: offset + sum((size_i - 1) * stride_i), which must lie
        // inside the storage.
        std::optional<int64_t> last = view->offset;
        for (size_t i = 0; i < view->size.size() && last; ++i) last = multiply_add(view->size[i] - 1, view->stride[i], *last);
        const int64_t numel = args[0]->integer;
        if (!last || *last >= numel) {
            fail("a tensor of shape " + shape_to_string(view->size) + " with strides " + shape_to_string(view->stride) + " at offset " +
                 std::to_string(view->offset) + " reaches past the end of storage '" + args[0]->text + "' (" +
                 std::to_string(numel) + " elements)");
        }
    }
    Value* tensor = make(Kind::tensor);
    tensor->dtype = args[0]->dtype;
    tensor->tensor = std::move(view);
    return tensor;
}

// ---------------------------------------------------------------------------------------------
// Choosing the state dict inside the unpickled object

using Entries = std::vector<std::pair<const Value*, const Value*>>;

// A dict's entries as Python holds them: a repeated key keeps its first position and last value.
Entries resolved_entries(const Value* dict) {
    Entries entries;
    std::unordered_map<std::string_view, size_t> position_of_key;
    for (const auto& [key, value] : dict->entries) {
        if (key->kind == Kind::text) {
            auto [it, inserted] = position_of_key.try_emplace(key->text, entries.size());
            if (!inserted) {
                entries[it->second].second = value;
                continue;
            }
        }
        entries.emplace_back(key, value);
    }
    return entries;
}

// Why a value is not a state dict (a non-empty dict from strings to tensors), or "" when it is.
std::string why_not_tensor_dict(const Value* v) {
    if (v->kind != Kind::dict) return std::string("is a ") + kind_name(v->kind) + ", not a dict of tensors";
    if (v->entries.empty()) return "is an empty dict";
    for (const auto& [key, value] : resolved_entries(v)) {
        if (key->kind != Kind::text) return std::string("has a key that is a ") + kind_name(key->kind) + ", not a string";
        if (value->kind != Kind::tensor) return "holds '" + key->text + "', a " + kind_name(value->kind) + ", not a tensor";
    }
    return "";
}

// why_not_tensor_dict, decided once per value: through the memo, a hostile pickle can make a
// million entries refer to one dict of a million tensors, which checked per entry takes hours.
class TensorDictCheck {
public:
    const std::string& why_not(const Value* v) {
        auto [it, inserted] = verdicts_.try_emplace(v);
        if (inserted) it->second = why_not_tensor_dict(v);
        return it->second;
    }
    bool is(const Value* v) { return why_not(v).empty(); }

private:
    std::unordered_map<const Value*, std::string> verdicts_;
};

std::string describe_keys(const Entries& entries) {
    std::string keys;
    size_t shown = 0;
    for (const auto& [key, value] : entries) {
        if (key->kind != Kind::text) continue;
        if (shown == 12) return keys + ", ...";
        keys += (shown++ ? ", '" : "'") + key->text + "' (" + kind_name(value->kind) + ")";
    }
    return shown ? keys : "no string keys";
}

const Value* select_state_dict(const Value* root, const std::string& key, const std::string& path) {
    if (root->kind != Kind::dict) {
        throw Error(ErrorCode::invalid_input, path + ": the checkpoint holds a " + std::string(kind_name(root->kind)) + ", not a dict of tensors");
    }
    const Entries entries = resolved_entries(root);
    TensorDictCheck check;
    if (!key.empty()) {
        const auto chosen = std::find_if(entries.begin(), entries.end(),
                                         [&](const auto& entry) { return entry.first->kind == Kind::text && entry.first->text == key; });
        if (chosen == entries.end()) {
            throw Error(ErrorCode::invalid_argument, path + ": no top-level entry '" + key + "' (it holds " + describe_keys(entries) + ")");
        }
        if (!check.is(chosen->second)) {
            throw Error(ErrorCode::invalid_argument, path + ": entry '" + key + "' " + check.why_not(chosen->second));
        }
        return chosen->second;
    }
    if (check.is(root)) return root;
    std::vector<std::pair<std::string, const Value*>> candidates;
    for (const auto& [k, v] : entries) {
        if (k->kind == Kind::text && check.is(v)) candidates.emplace_back(k->text, v);
    }
    for (const char* preferred : {"state_dict", "model", "model_state_dict"}) {
        for (const auto& [name, dict] : candidates) {
            if (name == preferred) return dict;
        }
    }
    if (candidates.size() == 1) return candidates.front().second;
    if (candidates.empty()) {
        throw Error(ErrorCode::invalid_input, path + ": no state dict found: the top-level dict " + check.why_not(root) +
                                                  ", and none of its entries is a dict of tensors (it holds " + describe_keys(entries) + ")");
    }
    std::string names;
    for (size_t i = 0; i < candidates.size(); ++i) {
        if (i == 12) {
            names += ", ... (" + std::to_string(candidates.size()) + " in all)";
            break;
        }
        names += (i ? ", '" : "'") + candidates[i].first + "'";
    }
    throw Error(ErrorCode::invalid_argument, path + ": several entries hold dicts of tensors (" + names + "); choose one with --key");
}

// ---------------------------------------------------------------------------------------------
// The zip archive (libzip over the memory-mapped file)

class ZipArchive {
public:
    ZipArchive(std::shared_ptr<const MappedFile> file, std::string path) : file_(std::move(file)), path_(std::move(path)) {
        zip_error_t error;
        zip_error_init(&error);
        zip_source_t* source = zip_source_buffer_create(file_->data(), file_->size(), 0, &error);
        if (source) {
            archive_ = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
            if (!archive_) zip_source_free(source);
        }
        const std::string reason = zip_error_strerror(&error);
        zip_error_fini(&error);
        if (!archive_) corrupt("the zip archive cannot be opened (" + reason + ")");
    }
    ~ZipArchive() { zip_discard(archive_); }
    ZipArchive(const ZipArchive&) = delete;
    ZipArchive& operator=(const ZipArchive&) = delete;

    [[noreturn]] void corrupt(const std::string& why) const {
        throw Error(ErrorCode::invalid_input, path_ + ": truncated or corrupt PyTorch checkpoint: " + why);
    }

    std::string first_name() const {
        if (zip_get_num_entries(archive_, 0) < 1) corrupt("the zip archive is empty");
        const char* name = zip_get_name(archive_, 0, ZIP_FL_ENC_RAW);
        if (!name) corrupt(std::string("unreadable entry name (") + zip_strerror(archive_) + ")");
        return name;
    }

    std::optional<zip_uint64_t> find(const std::string& name) const {
        const zip_int64_t index = zip_name_locate(archive_, name.c_str(), ZIP_FL_ENC_RAW);
        if (index < 0) return std::nullopt;
        return static_cast<zip_uint64_t>(index);
    }

    // The uncompressed size of a record, checked against what the file can hold.
    uint64_t size(zip_uint64_t index, const std::string& name) const {
        zip_stat_t st;
        zip_stat_init(&st);
        if (zip_stat_index(archive_, index, 0, &st) != 0) corrupt("cannot read the directory entry of '" + name + "' (" + zip_strerror(archive_) + ")");
        if (!(st.valid & ZIP_STAT_SIZE) || !(st.valid & ZIP_STAT_COMP_SIZE) || !(st.valid & ZIP_STAT_COMP_METHOD)) {
            corrupt("incomplete directory entry for '" + name + "'");
        }
        const bool plausible = st.comp_size <= file_->size() &&
                               (st.comp_method == ZIP_CM_STORE ? st.size == st.comp_size
                                                               : st.size <= st.comp_size * kMaxDeflateRatio + 1024);
        if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE) {
            throw Error(ErrorCode::unsupported, path_ + ": record '" + name + "' uses zip compression method " +
                                                    std::to_string(st.comp_method) + " (torch.save stores records uncompressed)");
        }
        if (!plausible) corrupt("record '" + name + "' claims " + std::to_string(st.size) + " bytes, more than the file can hold");
        return st.size;
    }

    // Reads a whole record (its CRC is checked at the end) into `out`, which holds `size` bytes.
    void read(zip_uint64_t index, const std::string& name, void* out, uint64_t size) const {
        zip_file_t* file = zip_fopen_index(archive_, index, 0);
        if (!file) corrupt("cannot open record '" + name + "' (" + zip_strerror(archive_) + ")");
        auto* dst = static_cast<std::byte*>(out);
        uint64_t done = 0;
        std::string failure;
        while (done < size) {
            const zip_int64_t n = zip_fread(file, dst + done, size - done);
            if (n < 0) failure = zip_file_strerror(file);
            if (n <= 0) break;
            done += static_cast<uint64_t>(n);
        }
        // One more read reaches the end of the record, where libzip verifies the CRC.
        std::byte extra;
        if (failure.empty() && done == size) {
            const zip_int64_t n = zip_fread(file, &extra, 1);
            if (n < 0) failure = zip_file_strerror(file);
            else if (n > 0) failure = "the record is longer than its directory entry says";
        }
        const int closed = zip_fclose(file);
        if (failure.empty() && done != size) failure = "the record ends after " + std::to_string(done) + " of " + std::to_string(size) + " bytes";
        if (failure.empty() && closed != 0) {
            zip_error_t error;
            zip_error_init_with_code(&error, closed);
            failure = zip_error_strerror(&error);
            zip_error_fini(&error);
        }
        if (!failure.empty()) corrupt("reading record '" + name + "' failed: " + failure);
    }

private:
    std::shared_ptr<const MappedFile> file_;
    std::string path_;
    zip_t* archive_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Turning views of storages into contiguous tensors

bool covers_whole_storage(const TensorView& view, int64_t storage_elements) {
    if (view.offset != 0 || shape_elements(view.size) != storage_elements) return false;
    int64_t expected = 1;
    for (size_t i = view.size.size(); i-- > 0;) {
        if (view.size[i] != 1 && view.stride[i] != expected) return false;
        expected *= view.size[i];
    }
    return true;
}

// Copies a strided view (bounds checked when it was unpickled) into contiguous row-major `out`.
void copy_strided(const std::byte* storage, size_t element_size, const TensorView& view, std::byte* out) {
    const int64_t elements = shape_elements(view.size);
    if (elements == 0) return;
    if (view.size.empty()) {
        std::memcpy(out, storage + view.offset * element_size, element_size);
        return;
    }
    const size_t rank = view.size.size();
    const int64_t row_length = view.size.back();
    const int64_t row_stride = view.stride.back();
    std::vector<int64_t> index(rank - 1, 0);
    int64_t row_start = view.offset;  // storage element where the current innermost row begins
    for (int64_t row = 0; row < elements / row_length; ++row) {
        if (row_stride == 1) {
            std::memcpy(out, storage + row_start * element_size, row_length * element_size);
        } else {
            for (int64_t j = 0; j < row_length; ++j) {
                std::memcpy(out + j * element_size, storage + (row_start + j * row_stride) * element_size, element_size);
            }
        }
        out += row_length * element_size;
        // Advance the outer indices like an odometer.
        for (size_t d = rank - 1; d-- > 0;) {
            if (++index[d] < view.size[d]) {
                row_start += view.stride[d];
                break;
            }
            row_start -= (view.size[d] - 1) * view.stride[d];
            index[d] = 0;
        }
    }
}

void swap_bytes(Tensor& tensor) {
    const size_t element_size = dtype_size(tensor.dtype());
    auto* p = static_cast<std::byte*>(tensor.data());
    for (int64_t i = 0; i < tensor.elements(); ++i, p += element_size) std::reverse(p, p + element_size);
}

struct NamedView {
    std::string name;
    const TensorView* view;
};

}  // namespace

bool looks_like_pytorch_zip(std::span<const std::byte> head) {
    constexpr size_t kLocalHeaderSize = 30;
    if (head.size() < kLocalHeaderSize || std::memcmp(head.data(), "PK\x03\x04", 4) != 0) return false;
    const size_t name_length = static_cast<uint8_t>(head[26]) | static_cast<size_t>(static_cast<uint8_t>(head[27])) << 8;
    if (name_length < 8 || kLocalHeaderSize + name_length > head.size()) return false;
    const std::string_view name(reinterpret_cast<const char*>(head.data() + kLocalHeaderSize), name_length);
    return name.ends_with("data.pkl");
}

bool looks_like_legacy_pytorch(std::span<const std::byte> head) {
    // PROTO n, then (protocol 4 and later) an optional FRAME, then the magic number.
    if (head.size() < 2 || static_cast<uint8_t>(head[0]) != 0x80) return false;
    size_t position = 2;
    if (head.size() > position && static_cast<uint8_t>(head[position]) == 0x95) position += 9;
    return head.size() >= position + kLegacyMagic.size() &&
           std::memcmp(head.data() + position, kLegacyMagic.data(), kLegacyMagic.size()) == 0;
}

TensorMap read_pytorch_checkpoint(const std::filesystem::path& path, const std::string& key) {
    const std::string name = path.string();
    const auto file = MappedFile::open(path);
    const auto head = file->bytes().first(std::min<size_t>(file->size(), 4096));
    if (!looks_like_pytorch_zip(head)) {
        if (looks_like_legacy_pytorch(head)) {
            throw Error(ErrorCode::unsupported, name + ": legacy (pre-1.6) PyTorch format; re-save it with torch.save in a recent PyTorch");
        }
        throw Error(ErrorCode::invalid_input, name + ": not a PyTorch checkpoint (torch.save writes a zip archive whose first entry is data.pkl)");
    }
    ZipArchive archive(file, name);

    // torch.save writes <archive>/data.pkl first; every other record shares its folder.
    const std::string pickle_record = archive.first_name();
    if (!pickle_record.ends_with("data.pkl")) archive.corrupt("the first entry is '" + pickle_record + "', not data.pkl");
    const std::string prefix = pickle_record.substr(0, pickle_record.size() - 8);

    bool big_endian = false;
    if (const auto index = archive.find(prefix + "byteorder")) {
        const uint64_t size = archive.size(*index, prefix + "byteorder");
        if (size > 16) archive.corrupt("implausible byteorder record");
        std::string order(size, '\0');
        archive.read(*index, prefix + "byteorder", order.data(), size);
        if (order != "little" && order != "big") archive.corrupt("unknown byte order '" + order + "'");
        big_endian = order == "big";
    }

    const auto pickle_index = archive.find(pickle_record);
    if (!pickle_index) archive.corrupt("'" + pickle_record + "' is missing from the zip directory");
    const uint64_t pickle_size = archive.size(*pickle_index, pickle_record);
    if (pickle_size > kMaxPickleBytes) archive.corrupt("'" + pickle_record + "' is implausibly large (" + std::to_string(pickle_size) + " bytes)");
    std::vector<std::byte> pickle(pickle_size);
    archive.read(*pickle_index, pickle_record, pickle.data(), pickle_size);

    Unpickler unpickler(pickle, name, pickle_record);
    const Value* state_dict = select_state_dict(unpickler.load(), key, name);

    // Read each storage once, then copy out every tensor that views it.
    std::map<std::string, std::vector<NamedView>> by_storage;
    for (const auto& [k, v] : resolved_entries(state_dict)) by_storage[v->tensor->storage->text].push_back({k->text, v->tensor.get()});

    const uint64_t expansion_limit = file->size() * kMaxDeflateRatio + kExpansionAllowanceBytes;
    uint64_t produced_bytes = 0;
    TensorMap tensors;
    for (const auto& [storage_key, views] : by_storage) {
        const Value* storage = views.front().view->storage;
        const std::string record = prefix + "data/" + storage->text;
        const auto index = archive.find(record);
        if (!index) archive.corrupt("missing storage record '" + record + "' (needed by tensor '" + views.front().name + "')");
        const uint64_t record_bytes = archive.size(*index, record);
        const size_t element_size = dtype_size(storage->dtype);
        const uint64_t declared_bytes = static_cast<uint64_t>(storage->integer) * element_size;
        if (record_bytes < declared_bytes) {
            archive.corrupt("storage record '" + record + "' holds " + std::to_string(record_bytes) + " bytes, but the pickle declares " +
                            std::to_string(storage->integer) + " elements of " + to_string(storage->dtype) + " (" +
                            std::to_string(declared_bytes) + " bytes)");
        }
        for (const auto& named : views) {
            produced_bytes += static_cast<uint64_t>(shape_elements(named.view->size)) * element_size;
            if (produced_bytes > expansion_limit) {
                archive.corrupt("tensor '" + named.name + "' of shape " + shape_to_string(named.view->size) +
                                " would expand the checkpoint far beyond its stored data (corrupt sizes or strides?)");
            }
        }
        if (views.size() == 1 && covers_whole_storage(*views.front().view, storage->integer) && record_bytes == declared_bytes) {
            // The common case, one parameter per storage: read straight into the tensor.
            Tensor tensor = Tensor::zeros(storage->dtype, views.front().view->size);
            archive.read(*index, record, tensor.data(), record_bytes);
            tensors[views.front().name] = std::move(tensor);
            continue;
        }
        std::vector<std::byte> buffer(record_bytes);
        archive.read(*index, record, buffer.data(), record_bytes);
        for (const auto& named : views) {
            Tensor tensor = Tensor::zeros(storage->dtype, named.view->size);
            copy_strided(buffer.data(), element_size, *named.view, static_cast<std::byte*>(tensor.data()));
            tensors[named.name] = std::move(tensor);
        }
    }
    if (big_endian) {
        for (auto& [tensor_name, tensor] : tensors) swap_bytes(tensor);
    }
    return tensors;
}

}  // namespace mclip

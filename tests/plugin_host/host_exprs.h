// TensorRT's IExprBuilder / IDimensionExpr, played by the test host.
//
// In TensorRT 10 and 11 both classes are inline wrappers over a protected `mImpl` pointer to
// apiv::VExprBuilder / apiv::VDimensionExpr (NvInferImpl.h), so a host can implement those and
// hand the plugin real IExprBuilder& / IDimensionExpr* objects. Expressions here are trees over
// named symbols (B, H0, W0, ...) and constants, folded like TensorRT folds constants, and evaluated
// later under several bindings of the symbols.
#pragma once

#include <NvInferRuntime.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

namespace host {

using nvinfer1::DimensionOperation;
using nvinfer1::IDimensionExpr;

class Expr;

class ExprNode final : public nvinfer1::apiv::VDimensionExpr {
 public:
  enum class Kind { kConstant, kSymbol, kOperation, kSizeTensor };
  Kind kind = Kind::kConstant;
  int64_t value = 0;
  std::string symbol;
  DimensionOperation op = DimensionOperation::kSUM;
  ExprNode const* a = nullptr;
  ExprNode const* b = nullptr;

  bool isConstant() const override { return kind == Kind::kConstant; }
  int64_t getConstantValue() const override { return kind == Kind::kConstant ? value : -1; }
  bool isSizeTensor() const override { return kind == Kind::kSizeTensor; }

  int64_t eval(std::map<std::string, int64_t> const& at) const {
    switch (kind) {
      case Kind::kConstant: return value;
      case Kind::kSymbol: {
        auto it = at.find(symbol);
        if (it == at.end()) throw std::invalid_argument("no value for symbol " + symbol);
        return it->second;
      }
      case Kind::kSizeTensor: throw std::invalid_argument("a size tensor has no value on the host");
      case Kind::kOperation: return apply(op, a->eval(at), b->eval(at));
    }
    return 0;
  }

  std::string str() const {
    switch (kind) {
      case Kind::kConstant: return std::to_string(value);
      case Kind::kSymbol: return symbol;
      case Kind::kSizeTensor: return "size_tensor";
      case Kind::kOperation: break;
    }
    static char const* const kOps[] = {"+", "*", "max", "min", "-", "==", "<", "floordiv", "ceildiv"};
    auto const i = static_cast<int>(op);
    std::string const name = i >= 0 && i < 9 ? kOps[i] : "?";
    if (op == DimensionOperation::kSUM || op == DimensionOperation::kPROD || op == DimensionOperation::kSUB)
      return "(" + a->str() + " " + name + " " + b->str() + ")";
    return name + "(" + a->str() + ", " + b->str() + ")";
  }

  static int64_t apply(DimensionOperation op, int64_t x, int64_t y) {
    switch (op) {
      case DimensionOperation::kSUM: return x + y;
      case DimensionOperation::kPROD: return x * y;
      case DimensionOperation::kMAX: return x > y ? x : y;
      case DimensionOperation::kMIN: return x < y ? x : y;
      case DimensionOperation::kSUB: return x - y;
      case DimensionOperation::kEQUAL: return x == y;
      case DimensionOperation::kLESS: return x < y;
      case DimensionOperation::kFLOOR_DIV: {
        if (y == 0) throw std::invalid_argument("division by zero");
        int64_t q = x / y;
        return (q * y != x && ((x < 0) != (y < 0))) ? q - 1 : q;
      }
      case DimensionOperation::kCEIL_DIV:
        if (y == 0) throw std::invalid_argument("division by zero");
        return -apply(DimensionOperation::kFLOOR_DIV, -x, y);
    }
    throw std::invalid_argument("unknown DimensionOperation");
  }
};

// The IDimensionExpr the plugin sees: its mImpl points at the node it owns.
class Expr final : public IDimensionExpr {
 public:
  Expr() { mImpl = &node; }
  ~Expr() noexcept override = default;
  ExprNode node;
};

inline ExprNode const& nodeOf(IDimensionExpr const& e) { return static_cast<Expr const&>(e).node; }

class ExprBuilderImpl final : public nvinfer1::apiv::VExprBuilder {
 public:
  IDimensionExpr const* constant(int64_t value) override {
    Expr* e = make();
    e->node.value = value;
    return e;
  }
  IDimensionExpr const* operation(DimensionOperation op, IDimensionExpr const& first,
                                  IDimensionExpr const& second) override {
    ExprNode const& a = nodeOf(first);
    ExprNode const& b = nodeOf(second);
    ++operations;
    if (a.isConstant() && b.isConstant()) return constant(ExprNode::apply(op, a.value, b.value));
    Expr* e = make();
    e->node.kind = ExprNode::Kind::kOperation;
    e->node.op = op;
    e->node.a = &a;
    e->node.b = &b;
    return e;
  }
  IDimensionExpr const* declareSizeTensor(int32_t, IDimensionExpr const&, IDimensionExpr const&) override {
    ++sizeTensors;
    Expr* e = make();
    e->node.kind = ExprNode::Kind::kSizeTensor;
    return e;
  }
  IDimensionExpr const* symbol(std::string const& name) {
    Expr* e = make();
    e->node.kind = ExprNode::Kind::kSymbol;
    e->node.symbol = name;
    return e;
  }
  int operations = 0;
  int sizeTensors = 0;

 private:
  Expr* make() {
    pool.push_back(std::make_unique<Expr>());
    return pool.back().get();
  }
  std::deque<std::unique_ptr<Expr>> pool;  // every expression lives as long as the builder
};

// The IExprBuilder& getOutputShapes receives.
class ExprBuilder final : public nvinfer1::IExprBuilder {
 public:
  ExprBuilder() { mImpl = &impl; }
  ~ExprBuilder() noexcept override = default;
  ExprBuilderImpl impl;
};

}  // namespace host

#pragma once
// The cnnc subcommands: each file registers one on the CLI11 app and runs it.
#include <CLI/CLI.hpp>

#include <functional>

namespace cnnc::tools {

// Each returns the action to run when its subcommand was given.
using Action = std::function<int()>;
Action add_summary(CLI::App& app);
Action add_run(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_ops(CLI::App& app);
Action add_compile(CLI::App& app);
Action add_compare(CLI::App& app);
Action add_tune(CLI::App& app);
Action add_db(CLI::App& app);
Action add_export(CLI::App& app);
Action add_evaluate(CLI::App& app);
Action add_train(CLI::App& app);

}  // namespace cnnc::tools

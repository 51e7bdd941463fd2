// cnnc: the command line. Thin: each subcommand calls the stages' public functions.
#include <iostream>
#include <new>

#include "ir/error.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"cnnc: a compiler for convolutional networks (.cnn, Keras models; Halide kernels)"};
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, cnnc::tools::Action>> commands;
  for (auto add : {cnnc::tools::add_summary, cnnc::tools::add_run, cnnc::tools::add_bench,
                   cnnc::tools::add_compile, cnnc::tools::add_compare, cnnc::tools::add_ops,
                   cnnc::tools::add_tune, cnnc::tools::add_db,
                   cnnc::tools::add_export, cnnc::tools::add_evaluate,
                   cnnc::tools::add_train}) {
    const size_t before = app.get_subcommands({}).size();
    auto action = add(app);
    commands.emplace_back(app.get_subcommands({}).at(before), std::move(action));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 alone says "A subcommand is required" for `cnnc frobnicate`: name the word instead.
    if (argc > 1 && argv[1][0] != '-') {
      std::string known;
      bool found = false;
      for (const CLI::App* sub : app.get_subcommands({})) {
        known += (known.empty() ? "" : ", ") + sub->get_name();
        found = found || sub->get_name() == argv[1];
      }
      if (!found) {
        std::cerr << "cnnc: error: unknown command '" << argv[1] << "'; accepted: " << known
                  << "\nRun with --help for more information.\n";
        return 1;
      }
    }
    return app.exit(e);
  }
  try {
    for (auto& [sub, action] : commands)
      if (sub->parsed()) return action();
  } catch (const cnnc::Error& e) {
    std::cerr << "cnnc: error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "cnnc: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    // cnnc::InternalError (a broken invariant) or anything else unexpected: cnnc's own bug.
    std::cerr << "cnnc: internal error: " << e.what()
              << "; please report it, with the command and the model file\n";
    return 2;
  }
  return 0;
}

// Subcommand registration. Each register_* adds one subcommand whose callback runs the
// command (CLI11 runs callbacks inside app.parse, so errors propagate to main).
#pragma once

#include <CLI/CLI.hpp>

namespace imp {

void register_commands(CLI::App& app);

void register_formats_command(CLI::App& app);
void register_inspect_command(CLI::App& app);
void register_dump_command(CLI::App& app);
void register_tokenize_command(CLI::App& app);
void register_plan_command(CLI::App& app);
void register_run_command(CLI::App& app);
void register_perplexity_command(CLI::App& app);
void register_kld_command(CLI::App& app);
void register_quant_report_command(CLI::App& app);
void register_bench_command(CLI::App& app);
void register_chat_command(CLI::App& app);
void register_chat_template_command(CLI::App& app);
void register_synth_command(CLI::App& app);
void register_imatrix_command(CLI::App& app);
void register_quantize_command(CLI::App& app);

}  // namespace imp

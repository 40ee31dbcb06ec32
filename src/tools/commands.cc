#include "tools/commands.h"

namespace imp {

void register_commands(CLI::App& app) {
  register_formats_command(app);
  register_inspect_command(app);
  register_dump_command(app);
  register_tokenize_command(app);
  register_plan_command(app);
  register_run_command(app);
  register_perplexity_command(app);
  register_kld_command(app);
  register_quant_report_command(app);
  register_bench_command(app);
  register_chat_command(app);
  register_chat_template_command(app);
  register_synth_command(app);
  register_imatrix_command(app);
  register_quantize_command(app);
}

}  // namespace imp

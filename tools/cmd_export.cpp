// `mclip export coreml`: one encoder of a model file as a Core ML package for iOS apps.
#include <cstdio>

#include "command.h"
#include "label_options.h"
#include "mclip/coreml.h"
#include "mclip/error.h"
#include "mclip/labels.h"

namespace {

void setup(CLI::App& app, int& exit_code) {
    auto* cmd = app.add_subcommand("export", "Write a model for another runtime");
    cmd->require_subcommand(1);
    auto model = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto options = std::make_shared<mclip::CoreMLExportOptions>();
    auto* coreml = cmd->add_subcommand("coreml", "Core ML package (.mlpackage, ML Program) for iOS 16+ / macOS 13+");
    coreml->add_option("--model", *model, "Model file (GGUF)")->required()->check(CLI::ExistingFile);
    coreml->add_option("--out", *out, "Package to write (NAME.mlpackage)")->required();
    coreml->add_option("--encoder", options->encoder, "Encoder to export")->capture_default_str()->check(CLI::IsMember({"image", "text"}));
    coreml->add_option("--compute", options->compute, "Compute precision")->capture_default_str()->check(CLI::IsMember({"f16", "f32"}));
    coreml->add_option("--weights", options->weights, "Weight storage")
        ->capture_default_str()
        ->check(CLI::IsMember({"f32", "f16", "int8", "lut8", "lut4"}));
    coreml->add_option("--target", options->target, "Deployment target")->capture_default_str()->check(CLI::IsMember({"iOS16", "iOS17"}));
    auto labels = std::make_shared<mclip::tools::LabelOptions>();
    mclip::tools::add_label_options(*coreml, *labels);
    coreml->add_option("--template", options->templates,
                       "Prompt template with {} for the label (repeatable; default \"a photo of a {}.\"); with labels only");
    coreml->callback([model, out, options, labels, &exit_code] {
        if (mclip::tools::labels_given(*labels)) options->labels = mclip::tools::gather_labels(*labels);
        if (!options->templates.empty() && options->labels.empty()) {
            throw mclip::Error(mclip::ErrorCode::invalid_argument, "--template needs --labels (a classifier)");
        }
        if (!options->templates.empty()) mclip::validate_templates(options->templates);
        mclip::export_coreml(*model, *out, *options);
        std::string what = options->encoder + " encoder";
        if (!options->labels.empty()) what = "image classifier over " + std::to_string(options->labels.size()) + " labels";
        std::fprintf(stderr, "wrote %s (%s, %s compute, %s weights, %s)\n", out->c_str(), what.c_str(), options->compute.c_str(),
                     options->weights.c_str(), options->target.c_str());
        exit_code = 0;
    });
}

MCLIP_REGISTER_COMMAND("export", setup);

}  // namespace

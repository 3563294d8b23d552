// A small MAC for the synthesis-flow tests: 4-bit x 4-bit product register, 16-bit accumulator.
module tiny_mac(input clk, input rst, input [3:0] a, input signed [3:0] b, input valid,
                output reg signed [15:0] acc);
  reg signed [7:0] product;
  reg product_valid;
  always @(posedge clk) begin
    product <= $signed({1'b0, a}) * b;
    product_valid <= valid;
    if (rst) acc <= 0;
    else if (product_valid) acc <= acc + product;
  end
endmodule

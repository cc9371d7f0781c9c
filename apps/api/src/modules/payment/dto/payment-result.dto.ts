import { BookingDto } from '../../booking/dto/booking.dto';
import { PaymentDto } from './payment.dto';

/** The answer to a payment: the payment and the booking as they stand after it. */
export class PaymentResultDto {
  payment: PaymentDto;

  booking: BookingDto;
}
